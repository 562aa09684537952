package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// makeCerts makes a CA and n node certificates in dir with the binary, as
// an operator would: keel cluster certs.
func makeCerts(t *testing.T, dir string, n int) {
	t.Helper()
	if out, err := exec.Command(keelBin, "cluster", "certs", "--dir", dir, "--nodes", strconv.Itoa(n)).CombinedOutput(); err != nil {
		t.Fatalf("keel cluster certs: %v\n%s", err, out)
	}
}

// A TLS-only server (--port 0 --tls-port P, tls-auth-clients yes) serves
// go-redis and redis-cli --tls with a client certificate from its CA, and
// refuses a client without one, or one whose certificate another CA
// signed.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "tls")
	makeCerts(t, certs, 2)
	ca, crt, key := filepath.Join(certs, "ca.crt"), filepath.Join(certs, "node-1.crt"), filepath.Join(certs, "node-1.key")
	port := freePorts(t, 1, false)[0]
	n := &node{id: 1, port: port, dir: filepath.Join(dir, "data"), log: filepath.Join(dir, "keel.log"),
		args: []string{"server", "--port", "0", "--tls-port", strconv.Itoa(port), "--dir", filepath.Join(dir, "data"),
			"--tls-cert-file", crt, "--tls-key-file", key, "--tls-ca-cert-file", ca}}
	n.start(t)
	t.Cleanup(n.stop)

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	client, err := tls.LoadX509KeyPair(filepath.Join(certs, "node-2.crt"), filepath.Join(certs, "node-2.key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: n.addr(), TLSConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}, ServerName: "127.0.0.1"}})
	defer c.Close()
	if err := c.Set(ctx, "over", "tls", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if v, err := c.Get(ctx, "over").Result(); err != nil || v != "tls" {
		t.Fatalf("GET over TLS: %q, %v", v, err)
	}

	// No client certificate: refused (tls-auth-clients yes).
	bare := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	defer bare.Close()
	if err := bare.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// A certificate from another CA: refused.
	other := filepath.Join(dir, "other")
	makeCerts(t, other, 1)
	stranger, _ := tls.LoadX509KeyPair(filepath.Join(other, "node-1.crt"), filepath.Join(other, "node-1.key"))
	strange := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, TLSConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{stranger}, ServerName: "127.0.0.1"}})
	defer strange.Close()
	if err := strange.Ping(ctx).Err(); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	// Plain TCP on the TLS port: nothing RESP comes back.
	plain := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plaintext client was served on the TLS port")
	}

	// redis-cli --tls, as an operator would use it.
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("KEEL_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-cli is not installed, and KEEL_REQUIRE_REDIS=1 requires it")
		}
		t.Skip("redis-cli is not installed: the redis-cli --tls check needs redis-tools")
	}
	out, err := exec.Command(cli, "--tls", "--cacert", ca, "--cert", filepath.Join(certs, "node-2.crt"), "--key", filepath.Join(certs, "node-2.key"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "GET", "over").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "tls" {
		t.Fatalf("redis-cli --tls GET over: %q, %v", out, err)
	}
}
