package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/transport"
	"github.com/keel-db/keel/transport/pki"
)

// The flags keel cluster local passes name files that make a working bus
// identity for that node.
func TestBusTLSFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	got := busTLSFlags(dir, 2)
	want := []string{"--tls-cluster", "yes",
		"--tls-cert-file", filepath.Join(dir, "node-2.crt"),
		"--tls-key-file", filepath.Join(dir, "node-2.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt")}
	if !slices.Equal(got, want) {
		t.Fatalf("flags %q, want %q", got, want)
	}
	if _, err := pki.Ensure(dir, []uint64{1, 2, 3}, busTLSHosts("127.0.0.1"), time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := transport.LoadTLS(got[3], got[5], got[7])
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID() != 2 {
		t.Fatalf("the files are node %d's", c.NodeID())
	}
}

func TestBusTLSHosts(t *testing.T) {
	for bind, want := range map[string][]string{
		"127.0.0.1": {"127.0.0.1", "::1", "localhost"},
		"10.0.0.5":  {"127.0.0.1", "::1", "localhost", "10.0.0.5"},
		"0.0.0.0":   {"127.0.0.1", "::1", "localhost"},
		"db.local":  {"127.0.0.1", "::1", "localhost", "db.local"},
	} {
		if got := busTLSHosts(bind); !slices.Equal(got, want) {
			t.Errorf("--bind %s: hosts %q, want %q", bind, got, want)
		}
	}
}

func TestClusterLocalServerArgs(t *testing.T) {
	o, err := parseClusterLocalArgs([]string{"--nodes", "3", "--dir", "d"})
	if err != nil {
		t.Fatal(err)
	}
	n := &localNode{id: 2, port: 7002, dir: filepath.Join("d", "node-2")}
	defer func(v bool) { serverTakesBusTLS = v }(serverTakesBusTLS)

	serverTakesBusTLS = false
	if args := strings.Join(n.serverArgs(o, "P"), " "); strings.Contains(args, "tls") {
		t.Fatalf("TLS flags passed to a server that does not take them: %s", args)
	}
	serverTakesBusTLS = true
	args := n.serverArgs(o, "P")
	if !slices.Equal(args[len(args)-8:], busTLSFlags(filepath.Join("d", "tls"), 2)) {
		t.Fatalf("args %q end without node 2's bus TLS flags", args)
	}
}

func TestClusterCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := clusterCerts(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("--dir", dir, "--nodes", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "created ") != 8 || !strings.Contains(out, "node 3: "+strings.Join(busTLSFlags(dir, 3), " ")) {
		t.Fatalf("output:\n%s", out)
	}
	for _, f := range []string{"ca.crt", "ca.key", "node-1.crt", "node-1.key", "node-3.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	ca, _ := os.ReadFile(pki.CACertFile(dir))

	// One more node, for keel cluster addnode: signed by the same CA.
	code, out, errOut = run("--dir", dir, "--id", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "created ") != 2 || !strings.Contains(out, "created "+pki.NodeCertFile(dir, 4)) {
		t.Fatalf("output:\n%s", out)
	}
	if again, _ := os.ReadFile(pki.CACertFile(dir)); !bytes.Equal(again, ca) {
		t.Fatal("the CA was replaced")
	}
	if _, err := transport.LoadTLS(pki.NodeCertFile(dir, 4), pki.NodeKeyFile(dir, 4), pki.CACertFile(dir)); err != nil {
		t.Fatal(err)
	}
	// Everything there already: nothing created, flags printed.
	if code, out, _ = run("--dir", dir, "--nodes", "4"); code != 0 || strings.Contains(out, "created") || strings.Count(out, "--tls-cluster yes") != 4 {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}

	for _, bad := range [][]string{
		{"--dir", dir},
		{"--dir", dir, "--nodes", "2", "--id", "3"},
		{"--dir", dir, "--id", "0"},
		{"--dir", dir, "--nodes", "0"},
		{"--dir", dir, "--nodes", "1001"},
		{"--dir", "", "--nodes", "1"},
		{"--dir", dir, "--nodes", "1", "extra"},
		{"--dir", dir, "--id", "5", "--hosts", "not a host"},
	} {
		code, _, errOut := run(bad...)
		if code == 0 || errOut == "" {
			t.Fatalf("%q: exit %d, stderr %q", bad, code, errOut)
		}
	}
	if _, err := os.Stat(pki.NodeCertFile(dir, 5)); err == nil {
		t.Fatal("a certificate was made despite a bad host")
	}
	if code, _, errOut := run("--help"); code != 0 || !strings.Contains(errOut, "usage: keel cluster certs") {
		t.Fatalf("--help: exit %d %q", code, errOut)
	}
}
