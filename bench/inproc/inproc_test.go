package inproc

import (
	"bytes"
	stdnet "net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/server"
)

// startServer runs a keel server on a free loopback port inside this
// process, as cmd/keel's serve does, and returns its port.
func startServer(tb testing.TB, appendOnly bool) int {
	tb.Helper()
	dir := tb.TempDir()
	opts := cluster.Options{Dir: dir, AppendOnly: appendOnly, Fsync: cluster.FsyncEverySec, Rand: seam.NewRand(), BackgroundSync: true}
	if appendOnly {
		opts.FS = disk.OS()
	}
	replica, err := cluster.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	fsync := "everysec"
	srv := server.New(server.Config{Bind: "127.0.0.1", Dir: dir, AppendOnly: appendOnly, AppendFsync: fsync}, replica)
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Shutdown()
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	return ln.Addr().(*stdnet.TCPAddr).Port
}

// BenchmarkServerUnderRedisBenchmark: one op is one SET plus one GET sent
// by redis-benchmark -t set,get -P 16 -c 50 -d 200 -r 100000, the load the
// performance doc profiles. ns/op includes the client's share of the two
// cores; the CPU profile does not.
//
//	go test -run '^$' -bench 'ServerUnderRedisBenchmark/off' -benchtime 2000000x \
//	    -cpuprofile /tmp/cpu.out ./bench/inproc && go tool pprof -top -nodecount=20 /tmp/cpu.out
func BenchmarkServerUnderRedisBenchmark(b *testing.B) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark not on PATH (apt-get install redis-tools)")
	}
	for _, tc := range []struct {
		name       string
		appendOnly bool
	}{{"off", false}, {"everysec", true}} {
		b.Run(tc.name, func(b *testing.B) {
			port := startServer(b, tc.appendOnly)
			b.ResetTimer()
			cmd := exec.Command(bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "set,get",
				"-P", "16", "-c", "50", "-d", "200", "-r", "100000", "-n", strconv.Itoa(max(b.N, 1000)), "--csv")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				b.Fatalf("redis-benchmark: %v\n%s", err, out.String())
			}
			b.StopTimer()
			if !bytes.Contains(out.Bytes(), []byte(`"SET"`)) || !bytes.Contains(out.Bytes(), []byte(`"GET"`)) {
				b.Fatalf("redis-benchmark output lacks SET/GET rows:\n%s", out.String())
			}
		})
	}
}

// TestServerAnswersBenchmarkCommands keeps this package's set-up honest in
// CI without redis-benchmark: the in-process server must store and return
// what the benchmark's commands write.
func TestServerAnswersBenchmarkCommands(t *testing.T) {
	port := startServer(t, false)
	c, err := stdnet.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "+OK\r\n$2\r\nv1\r\n"
	got := make([]byte, 0, len(want))
	buf := make([]byte, 64)
	for len(got) < len(want) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("replies = %q, want %q", got, want)
	}
}
