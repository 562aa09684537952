package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"hash/crc32"
	"math/big"
	stdnet "net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The cluster bus refuses a sender without the cluster's certificate. On
// `keel cluster local --nodes 3` (mutual TLS on the bus, requirepass),
// an attacker on the bus ports sends what used to take the cluster down:
// a heartbeat whose commit is 2^40 (raft panicked on every node), votes
// with rising terms (the group went leaderless), an append of a foreign
// entry ("SET pwned x"), and a configuration change adding itself — in
// plaintext, and over TLS with a certificate its own CA signed claiming
// to be node 1. Every node stays up, the leader stays in place, and no
// foreign key appears.
func TestForgedBusFramesChangeNothing(t *testing.T) {
	ports := freePorts(t, 3, true)
	base := ports[0]
	dir := filepath.Join(t.TempDir(), "keel-cluster")
	cmd := exec.Command(keelBin, "cluster", "local", "--nodes", "3", "--base-port", strconv.Itoa(base), "--dir", dir, "--requirepass", "s3cret")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	ready := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if strings.Contains(sc.Text(), "connect with:") {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-finished
		if t.Failed() {
			mu.Lock()
			t.Logf("keel cluster local output:\n%s", strings.Join(lines, "\n"))
			mu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-finished:
		t.Fatal("keel cluster local exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("keel cluster local not ready after 60 s")
	}
	ctx := context.Background()
	clients := make([]*redis.Client, 3)
	for i := range clients {
		clients[i] = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(base+i), Password: "s3cret", Protocol: 2})
		defer clients[i].Close()
	}
	leader := func() string {
		nodes, err := clients[0].ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER NODES: %v", err)
		}
		for _, l := range strings.Split(nodes, "\n") {
			if strings.Contains(l, "master") {
				return strings.Fields(l)[0]
			}
		}
		return ""
	}
	before := leader()
	if before == "" {
		t.Fatal("no leader")
	}

	frames := forgedFrames(t)
	stranger := strangerCert(t)
	for i := range 3 {
		bus := "127.0.0.1:" + strconv.Itoa(base+i+busPortOffset)
		// Plaintext: the old wire format and the current one.
		for _, magic := range []string{"KEEL1\x00\x00\x00", "KEEL2\x00\x00\x00"} {
			if c, err := stdnet.DialTimeout("tcp", bus, time.Second); err == nil {
				c.SetDeadline(time.Now().Add(2 * time.Second))
				c.Write(binary.BigEndian.AppendUint64([]byte(magic), 1))
				for _, f := range frames {
					c.Write(f)
				}
				c.Close()
			}
		}
		// TLS with a certificate the cluster's CA did not sign.
		conf := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{stranger}, MinVersion: tls.VersionTLS13}
		if c, err := tls.DialWithDialer(&stdnet.Dialer{Timeout: time.Second}, "tcp", bus, conf); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(binary.BigEndian.AppendUint64([]byte("KEEL2\x00\x00\x00"), 1))
			for _, f := range frames {
				c.Write(f)
			}
			c.Close()
		}
	}
	// Give any damage time to show: several election timeouts.
	time.Sleep(3 * time.Second)
	for i, c := range clients {
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("node %d is down after the attack: %v", i+1, err)
		}
	}
	if after := leader(); after != before {
		t.Fatalf("the leader changed from %s to %s", before, after)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{clients[0].Options().Addr}, Password: "s3cret", Protocol: 2})
	defer cc.Close()
	if n, err := cc.Exists(ctx, "pwned").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS pwned = %d, %v", n, err)
	}
	for i, c := range clients {
		nodes, _ := c.ClusterNodes(ctx).Result()
		if strings.Count(strings.TrimSpace(nodes), "\n") != 2 {
			t.Fatalf("node %d lists other members than the three:\n%s", i+1, nodes)
		}
	}
	if err := cc.Set(ctx, "after-attack", "ok", 0).Err(); err != nil {
		t.Fatalf("a write after the attack: %v", err)
	}
}

// forgedFrames are raft messages an attacker claiming to be node 1 sends,
// framed as the bus frames them (length, CRC32C, payload).
func forgedFrames(t *testing.T) [][]byte {
	t.Helper()
	entry := []byte("SET pwned x") // not even a well-formed log entry
	var cc pb.ConfChange
	cc.Type, cc.NodeID = pb.ConfChangeAddNode, 66
	ccData, _ := cc.Marshal()
	msgs := []pb.Message{
		{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 1 << 20, Commit: 1 << 40},
		{Type: pb.MsgApp, From: 1, To: 2, Term: 1 << 20, Index: 1 << 30, LogTerm: 1, Commit: 1 << 30,
			Entries: []pb.Entry{{Term: 1 << 20, Index: 1<<30 + 1, Data: entry}, {Term: 1 << 20, Index: 1<<30 + 2, Type: pb.EntryConfChange, Data: ccData}}},
	}
	for term := uint64(100); term < 110; term++ {
		msgs = append(msgs, pb.Message{Type: pb.MsgVote, From: 1, To: 3, Term: term, Index: 1 << 30, LogTerm: term})
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	var out [][]byte
	for _, m := range msgs {
		payload, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		sum := crc32.Update(crc32.Checksum(frame, table), table, payload)
		frame = binary.BigEndian.AppendUint32(frame, sum)
		out = append(out, append(frame, payload...))
	}
	return out
}

// strangerCert is a certificate of the attacker's own CA that claims
// node 1, as keel's certificates name their node.
func strangerCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("keel://node/1")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keel-node-1"}, URIs: []*url.URL{u},
		IPAddresses: []stdnet.IP{stdnet.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
