package pki

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// A certificate directory, as `keel cluster local` (<dir>/tls) and `keel
// cluster certs --dir` lay it out:
//
//	ca.crt ca.key              the cluster CA
//	node-<id>.crt node-<id>.key  one node's certificate and key
//
// Every file is 0600 and the directory 0700: the keys are secrets, and the
// certificates need not be read by anyone but the node's user.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// CACertFile and CAKeyFile are the CA's files in dir.
func CACertFile(dir string) string { return filepath.Join(dir, "ca.crt") }
func CAKeyFile(dir string) string  { return filepath.Join(dir, "ca.key") }

// NodeCertFile and NodeKeyFile are node id's files in dir.
func NodeCertFile(dir string, id uint64) string {
	return filepath.Join(dir, "node-"+strconv.FormatUint(id, 10)+".crt")
}
func NodeKeyFile(dir string, id uint64) string {
	return filepath.Join(dir, "node-"+strconv.FormatUint(id, 10)+".key")
}

// Ensure makes dir hold a CA and a certificate for each node of ids, each
// valid for hosts (IP addresses or DNS names besides its node id). What is
// there is reused after a check (it must verify against the CA, name its
// node and hold at now); what is missing is created. It returns the files
// it created, in order. A half pair (a certificate without its key) or a
// certificate that fails its check is an error, never overwritten: it may
// be the one an operator meant to use.
func Ensure(dir string, ids []uint64, hosts []string, now time.Time) (created []string, err error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, errors.Wrapf(err, "create certificate directory %s", dir)
	}
	ca, made, err := ensureCA(dir, now)
	if err != nil {
		return nil, err
	}
	if made {
		created = append(created, CACertFile(dir), CAKeyFile(dir))
	}
	roots, err := CertPool(ca.CertPEM)
	if err != nil {
		return created, err
	}
	for _, id := range ids {
		certFile, keyFile := NodeCertFile(dir, id), NodeKeyFile(dir, id)
		certPEM, keyPEM, ok, err := readPair(certFile, keyFile)
		if err != nil {
			return created, err
		}
		if ok {
			if _, err := CheckNode(certPEM, keyPEM, roots, id, now); err != nil {
				return created, errors.Wrapf(err, "%s (remove it and its key to issue a new one)", certFile)
			}
			continue
		}
		certPEM, keyPEM, err = ca.Issue(id, hosts, now)
		if err != nil {
			return created, err
		}
		// The key first: a certificate on disk always has its key.
		if err := writeFileAtomic(keyFile, keyPEM); err != nil {
			return created, err
		}
		if err := writeFileAtomic(certFile, certPEM); err != nil {
			return created, err
		}
		created = append(created, certFile, keyFile)
	}
	return created, nil
}

// ensureCA loads dir's CA, or creates one when neither of its files exists.
func ensureCA(dir string, now time.Time) (*Authority, bool, error) {
	certFile, keyFile := CACertFile(dir), CAKeyFile(dir)
	certPEM, keyPEM, ok, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, false, err
	}
	if ok {
		ca, err := ParseAuthority(certPEM, keyPEM)
		if err != nil {
			return nil, false, errors.Wrapf(err, "%s", certFile)
		}
		if now.After(ca.Cert.NotAfter) {
			return nil, false, errors.Newf("%s expired on %s", certFile, ca.Cert.NotAfter.Format(time.DateOnly))
		}
		return ca, false, nil
	}
	ca, keyPEM, err := NewAuthority(now)
	if err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(keyFile, keyPEM); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(certFile, ca.CertPEM); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// readPair reads a certificate and its key; ok is false when neither
// exists, and one without the other is an error.
func readPair(certFile, keyFile string) (certPEM, keyPEM []byte, ok bool, err error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	switch {
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, false, nil
	case certErr != nil && !errors.Is(certErr, os.ErrNotExist):
		return nil, nil, false, errors.Wrapf(certErr, "read %s", certFile)
	case keyErr != nil && !errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, false, errors.Wrapf(keyErr, "read %s", keyFile)
	case certErr != nil:
		return nil, nil, false, errors.Newf("%s exists but %s does not; restore it or remove both", keyFile, certFile)
	case keyErr != nil:
		return nil, nil, false, errors.Newf("%s exists but %s does not; restore it or remove both", certFile, keyFile)
	}
	return certPEM, keyPEM, true, nil
}

// writeFileAtomic creates path with data, 0600, or fails if it exists: a
// crash leaves either no file or the whole one, and two generators racing
// on one directory cannot overwrite each other's key.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	// CreateTemp makes the file 0600 (fileMode).
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "create %s", path)
	}
	defer os.Remove(tmp.Name()) // after a successful link, removes the temporary name only
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return errors.Wrapf(err, "write %s", tmp.Name())
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return errors.Wrapf(err, "fsync %s", tmp.Name())
	}
	if err := tmp.Close(); err != nil {
		return errors.Wrapf(err, "close %s", tmp.Name())
	}
	// Link, unlike rename, refuses an existing target.
	if err := os.Link(tmp.Name(), path); err != nil {
		return errors.Wrapf(err, "create %s", path)
	}
	d, err := os.Open(dir)
	if err != nil {
		return errors.Wrapf(err, "open %s", dir)
	}
	defer d.Close()
	return errors.Wrapf(d.Sync(), "fsync %s", dir)
}
