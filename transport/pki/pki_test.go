package pki

import (
	"bytes"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestNodeID(t *testing.T) {
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		uris []string
		id   uint64
		err  string
	}{
		{uris: []string{"keel://node/3"}, id: 3},
		{uris: []string{"spiffe://example/x", "keel://node/18446744073709551615"}, id: 18446744073709551615},
		{uris: nil, err: "names no keel node"},
		{uris: []string{"keel://other/3"}, err: "names no keel node"},
		{uris: []string{"keel://node/1", "keel://node/2"}, err: "names 2 keel nodes"},
		{uris: []string{"keel://node/1", "keel://node/1"}, err: "names 2 keel nodes"},
		{uris: []string{"keel://node/03"}, err: "malformed"},
		{uris: []string{"keel://node/0"}, err: "malformed"},
		{uris: []string{"keel://node/+3"}, err: "malformed"},
		{uris: []string{"keel://node/3/4"}, err: "malformed"},
		{uris: []string{"keel://node/3?x=1"}, err: "malformed"},
		{uris: []string{"keel://u@node/3"}, err: "malformed"},
		{uris: []string{"keel://node/"}, err: "malformed"},
	} {
		c := &x509.Certificate{}
		for _, s := range tc.uris {
			c.URIs = append(c.URIs, parse(s))
		}
		id, err := NodeID(c)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %d, %v; want error %q", tc.uris, id, err, tc.err)
			}
			continue
		}
		if err != nil || id != tc.id {
			t.Errorf("%v: got %d, %v; want %d", tc.uris, id, err, tc.id)
		}
	}
	if got := NodeURI(42).String(); got != "keel://node/42" {
		t.Fatalf("NodeURI(42) = %q", got)
	}
}

func TestIssueAndCheck(t *testing.T) {
	ca, _, err := NewAuthority(now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(3, []string{"127.0.0.1", "::1", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := CertPool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := CheckNode(certPEM, keyPEM, roots, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if id, err := NodeID(leaf); err != nil || id != 3 {
		t.Fatalf("id %d %v", id, err)
	}
	if leaf.Subject.CommonName != "keel-node-3" || len(leaf.IPAddresses) != 2 || !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
		t.Fatalf("subject %q IPs %v DNS %v", leaf.Subject.CommonName, leaf.IPAddresses, leaf.DNSNames)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("key algorithm %v", leaf.PublicKeyAlgorithm)
	}
	if _, err := CheckNode(certPEM, keyPEM, roots, 4, now); err == nil || !strings.Contains(err.Error(), "for node 3, not node 4") {
		t.Fatalf("wrong id accepted: %v", err)
	}
	if _, err := CheckNode(certPEM, keyPEM, roots, 3, now.Add(6*365*24*time.Hour)); err == nil {
		t.Fatal("expired certificate accepted")
	}
	other, _, err := NewAuthority(now)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots, _ := CertPool(other.CertPEM)
	if _, err := CheckNode(certPEM, keyPEM, otherRoots, 3, now); err == nil {
		t.Fatal("certificate accepted by another CA")
	}
	_, otherKey, _ := ca.Issue(3, nil, now)
	if _, err := CheckNode(certPEM, otherKey, roots, 3, now); err == nil {
		t.Fatal("certificate accepted with another node's key")
	}
	if _, _, err := ca.Issue(0, nil, now); err == nil {
		t.Fatal("node id 0 issued")
	}
	if _, _, err := ca.Issue(1, []string{"a b"}, now); err == nil {
		t.Fatal("bad host accepted")
	}
	// A bundle holding both the old and the new CA trusts both.
	both, err := CertPool(append(append([]byte(nil), ca.CertPEM...), other.CertPEM...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckNode(certPEM, keyPEM, both, 3, now); err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool([]byte("not pem")); err == nil {
		t.Fatal("empty CA bundle accepted")
	}
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	created, err := Ensure(dir, []uint64{1, 2, 3}, []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CACertFile(dir), CAKeyFile(dir)}
	for _, id := range []uint64{1, 2, 3} {
		want = append(want, NodeCertFile(dir, id), NodeKeyFile(dir, id))
	}
	if !slices.Equal(created, want) {
		t.Fatalf("created %v, want %v", created, want)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != dirMode {
		t.Fatalf("directory mode %v %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(want) {
		t.Fatalf("directory holds %d files, want %d (a temporary file left behind?)", len(ents), len(want))
	}
	for _, f := range want {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != fileMode {
			t.Fatalf("%s: mode %v %v", f, fi.Mode(), err)
		}
	}
	before, _ := os.ReadFile(NodeCertFile(dir, 2))
	caBefore, _ := os.ReadFile(CACertFile(dir))

	// Again, with one more node: everything is reused, node 4 is signed
	// by the same CA.
	created, err = Ensure(dir, []uint64{1, 2, 3, 4}, []string{"127.0.0.1"}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, []string{NodeCertFile(dir, 4), NodeKeyFile(dir, 4)}) {
		t.Fatalf("second run created %v", created)
	}
	after, _ := os.ReadFile(NodeCertFile(dir, 2))
	caAfter, _ := os.ReadFile(CACertFile(dir))
	if !bytes.Equal(before, after) || !bytes.Equal(caBefore, caAfter) {
		t.Fatal("an existing certificate was rewritten")
	}
	roots, _ := CertPool(caAfter)
	c4, _ := os.ReadFile(NodeCertFile(dir, 4))
	k4, _ := os.ReadFile(NodeKeyFile(dir, 4))
	if _, err := CheckNode(c4, k4, roots, 4, now); err != nil {
		t.Fatal(err)
	}

	// A certificate without its key is an error, and nothing is replaced.
	os.Remove(NodeKeyFile(dir, 1))
	if _, err := Ensure(dir, []uint64{1}, nil, now); err == nil || !strings.Contains(err.Error(), "node-1.key does not") {
		t.Fatalf("half pair: %v", err)
	}
	// A node certificate from another CA is refused, not overwritten.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := Ensure(other, []uint64{2}, nil, now); err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(NodeCertFile(other, 2))
	foreignKey, _ := os.ReadFile(NodeKeyFile(other, 2))
	os.Remove(NodeCertFile(dir, 2))
	os.Remove(NodeKeyFile(dir, 2))
	os.WriteFile(NodeCertFile(dir, 2), foreign, 0o600)
	os.WriteFile(NodeKeyFile(dir, 2), foreignKey, 0o600)
	if _, err := Ensure(dir, []uint64{2}, nil, now); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("foreign certificate: %v", err)
	}
	if got, _ := os.ReadFile(NodeCertFile(dir, 2)); !bytes.Equal(got, foreign) {
		t.Fatal("foreign certificate overwritten")
	}
	// A CA certificate without its key is an error.
	os.Remove(CAKeyFile(dir))
	if _, err := Ensure(dir, []uint64{3}, nil, now); err == nil || !strings.Contains(err.Error(), "ca.key does not") {
		t.Fatalf("CA without key: %v", err)
	}
}

func TestWriteFileAtomicRefusesExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.key")
	if err := writeFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two")); err == nil {
		t.Fatal("existing file overwritten")
	}
	if got, _ := os.ReadFile(p); string(got) != "one" {
		t.Fatalf("file holds %q", got)
	}
}
