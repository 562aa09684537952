package transport

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/transport/pki"
)

// TLS is a node's identity on the bus: its certificate and key, and the
// cluster CA that every peer's certificate must chain to. The certificate
// names the node (pki.NodeID: a keel://node/<id> URI SAN), and so does
// every peer's: a peer is the node its verified certificate names, not the
// node its hello claims.
//
// Connections are mutual TLS 1.3 and nothing older. Host names are not
// checked: on the bus a node is its id, and the id is checked instead, in
// both directions (the dialer against the id it meant to reach, the
// acceptor against the hello).
type TLS struct {
	cert  tls.Certificate
	roots *x509.CertPool
	id    uint64
}

// LoadTLS reads the three PEM files of redis.conf's --tls-cert-file,
// --tls-key-file and --tls-ca-cert-file (the CA file may hold several CAs,
// as during a rotation) and checks them: the key matches the certificate,
// the certificate names a node, chains to a CA of the file and is valid
// now. Pass the result as TCPConfig.TLS, whose ID must be NodeID().
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	read := func(what, name string) ([]byte, error) {
		b, err := os.ReadFile(name)
		return b, errors.Wrapf(err, "read the bus %s %s", what, name)
	}
	certPEM, err := read("certificate", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read("key", keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := read("CA certificate", caFile)
	if err != nil {
		return nil, err
	}
	c, err := NewTLS(certPEM, keyPEM, caPEM)
	return c, errors.Wrapf(err, "bus TLS from %s, %s and %s", certFile, keyFile, caFile)
}

// NewTLS is LoadTLS from the files' contents.
func NewTLS(certPEM, keyPEM, caPEM []byte) (*TLS, error) {
	roots, err := pki.CertPool(caPEM)
	if err != nil {
		return nil, err
	}
	pair, err := pki.CheckNode(certPEM, keyPEM, roots, 0, time.Now())
	if err != nil {
		return nil, err
	}
	id, err := pki.NodeID(pair.Leaf)
	if err != nil {
		return nil, err
	}
	return &TLS{cert: pair, roots: roots, id: id}, nil
}

// NodeID is the node id the certificate names.
func (c *TLS) NodeID() uint64 { return c.id }

// serverConfig accepts a peer only with a certificate that chains to the
// CA; the peer's id is then read from it (peerID).
func (c *TLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.roots,
		// No resumption: every connection shows its certificate afresh.
		SessionTicketsDisabled: true,
	}
}

// clientConfig reaches node want and no other: the peer's certificate
// must chain to the CA and name want.
func (c *TLS) clientConfig(want uint64) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		// The standard check matches host names, which say nothing about
		// which node answered; VerifyConnection below does the whole check
		// instead: the chain against the cluster CA, then the node id.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			chain := make([][]byte, len(cs.PeerCertificates))
			for i, cert := range cs.PeerCertificates {
				chain[i] = cert.Raw
			}
			if err := pki.VerifyPeer(chain, c.roots, time.Now()); err != nil {
				return err
			}
			got, err := pki.NodeID(cs.PeerCertificates[0])
			if err != nil {
				return err
			}
			if got != want {
				return errors.Newf("the peer's certificate is node %d's, not node %d's", got, want)
			}
			return nil
		},
	}
}

// peerID is the node id of a verified client certificate.
func peerID(cs tls.ConnectionState) (uint64, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return 0, errors.New("no verified certificate")
	}
	return pki.NodeID(cs.VerifiedChains[0][0])
}
