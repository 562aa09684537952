package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	stdnet "net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
)

const (
	// NodeURIScheme and NodeURIHost make a node's URI SAN,
	// keel://node/<id>.
	NodeURIScheme = "keel"
	NodeURIHost   = "node"

	// caValidity and nodeValidity: a CA outlives every certificate it
	// signs; a node certificate is replaced by restarting the node with
	// a new one (docs/security.md).
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 5 * 365 * 24 * time.Hour
	// clockSkewAllowance backdates NotBefore so that a node whose clock is
	// a little behind the generating machine's accepts a fresh
	// certificate.
	clockSkewAllowance = time.Hour
	// serialBits: RFC 5280 allows up to 20 octets; 128 random bits make
	// collisions irrelevant.
	serialBits = 128
)

// NodeURI is the URI SAN that binds a certificate to node id.
func NodeURI(id uint64) *url.URL {
	return &url.URL{Scheme: NodeURIScheme, Host: NodeURIHost, Path: "/" + strconv.FormatUint(id, 10)}
}

// NodeID returns the node id a certificate names: its one keel://node/<id>
// URI SAN. A certificate with none, with several, or with a malformed one
// names no node.
func NodeID(cert *x509.Certificate) (uint64, error) {
	var id uint64
	found := 0
	for _, u := range cert.URIs {
		if u.Scheme != NodeURIScheme || u.Host != NodeURIHost {
			continue
		}
		found++
		text, ok := strings.CutPrefix(u.Path, "/")
		n, err := strconv.ParseUint(text, 10, 64)
		if !ok || err != nil || n == 0 || strconv.FormatUint(n, 10) != text ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return 0, errors.Newf("certificate %q: malformed node URI %q (want keel://node/<id>)", cert.Subject.CommonName, u.String())
		}
		id = n
	}
	switch found {
	case 0:
		return 0, errors.Newf("certificate %q names no keel node (no keel://node/<id> URI SAN)", cert.Subject.CommonName)
	case 1:
		return id, nil
	default:
		return 0, errors.Newf("certificate %q names %d keel nodes; it must name one", cert.Subject.CommonName, found)
	}
}

// Authority is a cluster CA that can sign node certificates.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewAuthority makes a new cluster CA (ECDSA P-256) valid from now.
func NewAuthority(now time.Time) (*Authority, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errors.Wrap(err, "generate CA key")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial's tail tells two clusters' CAs apart in a listing.
		Subject:               pkix.Name{CommonName: "keel cluster CA " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs node certificates only, never another CA.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, errors.Wrap(err, "sign CA certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, errors.Wrap(err, "parse new CA certificate")
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &Authority{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, keyPEM, nil
}

// ParseAuthority reads a CA from its certificate and key (PEM).
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, errors.Wrap(err, "CA certificate and key")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, errors.Wrap(err, "CA certificate")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.Newf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.Newf("CA key of type %T cannot sign", pair.PrivateKey)
	}
	return &Authority{Cert: cert, CertPEM: certPEM, key: signer}, nil
}

// Issue signs a certificate for node id (ECDSA P-256, for both ends of a
// bus connection), valid from now. hosts (IP addresses or DNS names) are
// added as SANs for tools that check host names; keel's bus checks only
// the node id.
func (a *Authority) Issue(id uint64, hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if id == 0 {
		return nil, nil, errors.New("node id must be positive")
	}
	if a.key == nil {
		return nil, nil, errors.New("the CA's key is not loaded")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errors.Wrap(err, "generate node key")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "keel-node-" + strconv.FormatUint(id, 10)},
		NotBefore:    now.Add(-clockSkewAllowance),
		NotAfter:     now.Add(nodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// A node dials its peers and accepts them: one certificate serves
		// both ends.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{NodeURI(id)},
	}
	if tmpl.NotAfter.After(a.Cert.NotAfter) {
		tmpl.NotAfter = a.Cert.NotAfter
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case stdnet.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, stdnet.ParseIP(h))
		case strings.ContainsAny(h, " /:@"):
			return nil, nil, errors.Newf("host %q is neither an IP address nor a DNS name", h)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "sign certificate for node %d", id)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// CheckNode verifies that certPEM and keyPEM are node id's certificate and
// key, signed by roots and valid at now, usable at both ends of a bus
// connection. It returns the parsed pair.
func CheckNode(certPEM, keyPEM []byte, roots *x509.CertPool, id uint64, now time.Time) (tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, errors.Wrap(err, "node certificate and key")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return tls.Certificate{}, errors.Wrap(err, "node certificate")
	}
	got, err := NodeID(leaf)
	if err != nil {
		return tls.Certificate{}, err
	}
	if id != 0 && got != id {
		return tls.Certificate{}, errors.Newf("certificate is for node %d, not node %d", got, id)
	}
	if err := VerifyPeer(pair.Certificate, roots, now); err != nil {
		return tls.Certificate{}, err
	}
	pair.Leaf = leaf
	return pair, nil
}

// VerifyPeer checks a certificate chain (leaf first, DER) against roots
// at now for use at both ends of a bus connection, and returns nothing
// more: the caller reads the id with NodeID.
func VerifyPeer(chain [][]byte, roots *x509.CertPool, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return errors.Wrap(err, "parse certificate")
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// KeyUsages accepts a chain allowing any one listed usage: check each.
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return errors.Wrapf(err, "certificate %q", certs[0].Subject.CommonName)
		}
	}
	return nil
}

// CertPool reads every certificate of a PEM bundle (a CA file may hold the
// old and the new CA during a rotation).
func CertPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := caPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errors.Wrap(err, "CA certificate")
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no CA certificate (PEM CERTIFICATE block) found")
	}
	return pool, nil
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialBits))
	if err != nil {
		return nil, errors.Wrap(err, "certificate serial")
	}
	// A serial must be positive, and a leading 1 bit keeps its hex form
	// (the CA's name) a fixed length.
	return n.SetBit(n, serialBits-1, 1), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errors.Wrap(err, "encode key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
