package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// chunkReader returns its input a few bytes per Read, to exercise every
// split point of a command.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = c.sizes[c.i%len(c.sizes)]
		c.i++
	}
	n = max(1, min(n, len(p), len(c.data)))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func strs(cmd [][]byte) []string {
	out := make([]string, len(cmd))
	for i, a := range cmd {
		out[i] = string(a)
	}
	return out
}

// readAll parses src to the end, returning each command and the final error.
func readAll(t testing.TB, src io.Reader, lim Limits) ([][]string, error) {
	rd := NewReader(src, lim)
	var out [][]string
	for {
		batch, err := rd.ReadBatch()
		if err != nil {
			return out, err
		}
		if len(batch) == 0 {
			t.Fatalf("ReadBatch returned an empty batch without error")
		}
		for _, cmd := range batch {
			out = append(out, strs(cmd))
		}
	}
}

func TestReaderCommands(t *testing.T) {
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\n" + // binary-safe value with CRLF inside
		"PING\r\n" +
		"\r\n" + // blank inline line: ignored
		"*0\r\n" + "*-1\r\n" + // empty multibulk: ignored, as Redis
		"set  a   'it\\'s' \"x\\ty\\x41\\\"\"\n" +
		"echo \"\"\r\n" +
		"*1\r\n$0\r\n\r\n"
	want := [][]string{{"SET", "k", "he\r\nl"}, {"PING"}, {"set", "a", "it's", "x\tyA\""}, {"echo", ""}, {""}}
	for _, sizes := range [][]int{nil, {1}, {2, 3, 7}, {4096}} {
		var src io.Reader = strings.NewReader(in)
		if sizes != nil {
			src = &chunkReader{data: []byte(in), sizes: sizes}
		}
		got, err := readAll(t, src, DefaultLimits())
		if !errors.Is(err, io.EOF) {
			t.Fatalf("sizes %v: err %v", sizes, err)
		}
		if len(got) != len(want) {
			t.Fatalf("sizes %v: got %q", sizes, got)
		}
		for i := range want {
			if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
				t.Fatalf("sizes %v: command %d is %q, want %q", sizes, i, got[i], want[i])
			}
		}
	}
}

func TestReaderInline(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "PING\r\n", want: []string{"PING"}},
		{in: "set a b\n", want: []string{"set", "a", "b"}},
		{in: "  set\t a   b  \r\n", want: []string{"set", "a", "b"}},
		{in: "set \"a b\" 'c d'\r\n", want: []string{"set", "a b", "c d"}},
		{in: "set \"\\x41\\n\\\\\" 'it\\'s'\r\n", want: []string{"set", "A\n\\", "it's"}},
		{in: "set \"a\r\n", err: "unbalanced quotes in request"},
		{in: "set \"a\"b\r\n", err: "unbalanced quotes in request"},
		{in: "set 'a\r\n", err: "unbalanced quotes in request"},
	}
	for _, tc := range cases {
		got, err := readAll(t, strings.NewReader(tc.in), DefaultLimits())
		if tc.err != "" {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Msg != tc.err {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if !errors.Is(err, io.EOF) || len(got) != 1 || strings.Join(got[0], "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestReaderPipelineOneBatch(t *testing.T) {
	var in bytes.Buffer
	for i := 0; i < 100; i++ {
		in.WriteString("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
	}
	rd := NewReader(&in, DefaultLimits())
	batch, err := rd.ReadBatch()
	if err != nil {
		t.Fatal(err)
	}
	// The first read fills the initial buffer; every complete command in it
	// is one batch.
	if n := len(batch); n != readBufferBytesInitial/len("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n") {
		t.Fatalf("first batch has %d commands", n)
	}
	total := len(batch)
	for {
		batch, err = rd.ReadBatch()
		if err != nil {
			break
		}
		for _, cmd := range batch {
			if string(cmd[0]) != "GET" || string(cmd[1]) != "key" {
				t.Fatalf("bad command %q", strs(cmd))
			}
		}
		total += len(batch)
	}
	if total != 100 {
		t.Fatalf("got %d commands, want 100", total)
	}
}

func TestReaderProtocolErrors(t *testing.T) {
	cases := []struct{ in, err string }{
		{"*99999999999\r\n", "invalid multibulk length"},
		{"*abc\r\n", "invalid multibulk length"},
		{"*1048577\r\n", "invalid multibulk length"},
		{"*1\r\nfoo\r\n", "expected '$', got 'f'"},
		{"*1\r\n$-5\r\n", "invalid bulk length"},
		{"*1\r\n$x\r\n", "invalid bulk length"},
		{"*1\r\n$536870913\r\n", "invalid bulk length"},
		{"*1" + strings.Repeat("1", 70000), "too big mbulk count string"},
		{"*1\r\n$1" + strings.Repeat("1", 70000), "too big bulk count string"},
		{strings.Repeat("x", 70000), "too big inline request"},
	}
	for _, tc := range cases {
		_, err := readAll(t, strings.NewReader(tc.in), DefaultLimits())
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Msg != tc.err {
			t.Errorf("%.40q: err %v, want %q", tc.in, err, tc.err)
		}
	}
}

// A protocol error after good commands comes after their batch, so they
// are answered first, as in Redis.
func TestReaderErrorAfterCommands(t *testing.T) {
	rd := NewReader(strings.NewReader("PING\r\nPING\r\n*1\r\nx\r\n"), DefaultLimits())
	batch, err := rd.ReadBatch()
	if err != nil || len(batch) != 2 {
		t.Fatalf("got %d commands, %v", len(batch), err)
	}
	_, err = rd.ReadBatch()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Msg != "expected '$', got 'x'" {
		t.Fatalf("err %v", err)
	}
}

// A big bulk grows the buffer, arrives intact across many reads, and the
// buffer shrinks back once the command is done.
func TestReaderBigBulkGrowsAndShrinks(t *testing.T) {
	val := bytes.Repeat([]byte("abcdefgh"), 1<<17) // 1 MiB
	var in bytes.Buffer
	in.WriteString("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n")
	in.Write(val)
	in.WriteString("\r\nPING\r\n")
	rd := NewReader(&chunkReader{data: in.Bytes(), sizes: []int{65536, 1000, 3}}, DefaultLimits())
	batch, err := rd.ReadBatch()
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) < 1 || !bytes.Equal(batch[0][2], val) {
		t.Fatalf("value not intact")
	}
	if rd.BufferCap() < len(val) {
		t.Fatalf("buffer %d smaller than the value", rd.BufferCap())
	}
	if len(batch) == 1 {
		batch, err = rd.ReadBatch()
		if err != nil || string(batch[0][0]) != "PING" {
			t.Fatalf("PING: %v", err)
		}
	}
	if _, err := rd.ReadBatch(); !errors.Is(err, io.EOF) {
		t.Fatalf("err %v", err)
	}
	if rd.BufferCap() != readBufferBytesInitial {
		t.Fatalf("buffer did not shrink: %d", rd.BufferCap())
	}
}

// An announced bulk is not allocated up front: the buffer grows only as
// bytes arrive.
func TestReaderDoesNotTrustAnnouncedLength(t *testing.T) {
	rd := NewReader(strings.NewReader("*1\r\n$500000000\r\nabc"), DefaultLimits())
	if _, err := rd.ReadBatch(); !errors.Is(err, io.EOF) {
		t.Fatalf("err %v", err)
	}
	if rd.BufferCap() > 4*readBufferBytesInitial {
		t.Fatalf("buffer grew to %d for 3 bytes of payload", rd.BufferCap())
	}
}

func TestReaderQueryBufferLimit(t *testing.T) {
	lim := DefaultLimits()
	lim.QueryBufferBytesMax = 64 << 10
	var in bytes.Buffer
	in.WriteString("*100000\r\n")
	for i := 0; i < 100000; i++ {
		in.WriteString("$1\r\nx\r\n")
	}
	_, err := readAll(t, &in, lim)
	if err != ErrQueryBufferLimit {
		t.Fatalf("err %v", err)
	}
}

func TestParseInt(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63}
	for s, want := range good {
		if n, ok := ParseInt([]byte(s)); !ok || n != want {
			t.Errorf("%q: %d %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "01", "+1", "-0", "1a", "9223372036854775808", "-9223372036854775809", " 1"} {
		if _, ok := ParseInt([]byte(s)); ok {
			t.Errorf("%q parsed", s)
		}
	}
}

// encode writes args as a RESP multibulk command with the Writer.
func encode(args [][]byte) []byte {
	w := NewWriter()
	w.WriteArray(len(args))
	for _, a := range args {
		w.WriteBulk(a)
	}
	return w.Bytes()
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\n"))
	f.Add([]byte("set \"a\\x41\" 'b c'\r\n"))
	f.Add([]byte("*1\r\n$-5\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := DefaultLimits()
		lim.InlineBytesMax = 1 << 10
		lim.BulkBytesMax = 1 << 16
		lim.QueryBufferBytesMax = 1 << 20
		sizes := []int{1 + int(len(data)%7), 3, 1 + len(data)%13}
		// 1. Any input: no panic; every parsed command re-encodes and
		//    parses back to itself.
		got, err := readAll(t, &chunkReader{data: bytes.Clone(data), sizes: sizes}, lim)
		var pe *ProtocolError
		if !errors.Is(err, io.EOF) && !errors.As(err, &pe) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, cmd := range got {
			args := make([][]byte, len(cmd))
			for i, a := range cmd {
				args[i] = []byte(a)
			}
			back, err := readAll(t, bytes.NewReader(encode(args)), lim)
			if !errors.Is(err, io.EOF) || len(back) != 1 || strings.Join(back[0], "\x00") != strings.Join(cmd, "\x00") {
				t.Fatalf("round trip of %q: %q %v", cmd, back, err)
			}
		}
		// 2. The input split at NUL bytes, as arguments: encoding then
		//    parsing gives them back.
		parts := bytes.Split(data, []byte{0})
		if len(parts) > 64 {
			parts = parts[:64]
		}
		back, err := readAll(t, &chunkReader{data: encode(parts), sizes: sizes}, lim)
		if !errors.Is(err, io.EOF) || len(back) != 1 || len(back[0]) != len(parts) {
			t.Fatalf("round trip of %q: %q %v", parts, back, err)
		}
		for i := range parts {
			if back[0][i] != string(parts[i]) {
				t.Fatalf("arg %d: %q != %q", i, back[0][i], parts[i])
			}
		}
	})
}

// socketReader returns at most one message per Read, as a socket does for
// a client that waits for replies between pipelines.
type socketReader struct{ msgs [][]byte }

func (s *socketReader) Read(p []byte) (int, error) {
	if len(s.msgs) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.msgs[0])
	s.msgs[0] = s.msgs[0][n:]
	if len(s.msgs[0]) == 0 {
		s.msgs = s.msgs[1:]
	}
	return n, nil
}

// A 16-command pipeline of 200-byte SETs (about 4 KiB) is split by the
// initial 1 KiB buffer only once: the full read makes the next read
// busy-sized, so every later pipeline is one batch (one shard acquisition,
// one reply write). After a run of small reads the buffer shrinks back.
func TestReaderPipelineGrowsToOneBatchAndShrinks(t *testing.T) {
	const pipelines, depth = 20, 16
	val := strings.Repeat("v", 200)
	var one bytes.Buffer
	for i := 0; i < depth; i++ {
		one.WriteString("*3\r\n$3\r\nSET\r\n$6\r\nkey:01\r\n$200\r\n" + val + "\r\n")
	}
	src := &socketReader{}
	for i := 0; i < pipelines; i++ {
		src.msgs = append(src.msgs, append([]byte(nil), one.Bytes()...))
	}
	for i := 0; i < 2*readsSmallBeforeShrink; i++ {
		src.msgs = append(src.msgs, []byte("PING\r\n"))
	}
	rd := NewReader(src, DefaultLimits())
	var batches []int
	sets := 0
	for sets < pipelines*depth {
		batch, err := rd.ReadBatch()
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range batch {
			if string(cmd[0]) != "SET" || string(cmd[2]) != val {
				t.Fatalf("bad command %q", strs(cmd)[0])
			}
		}
		sets += len(batch)
		batches = append(batches, len(batch))
	}
	if sets != pipelines*depth {
		t.Fatalf("%d SETs, want %d", sets, pipelines*depth)
	}
	// The first pipeline takes two batches (1 KiB, then the rest); every
	// later one exactly one.
	if len(batches) != pipelines+1 {
		t.Fatalf("%d batches for %d pipelines: %v", len(batches), pipelines, batches)
	}
	if rd.BufferCap() != readBufferBytesBusy {
		t.Fatalf("busy buffer is %d, want %d", rd.BufferCap(), readBufferBytesBusy)
	}
	for i := 0; i < 2*readsSmallBeforeShrink; i++ {
		batch, err := rd.ReadBatch()
		if err != nil || len(batch) != 1 || string(batch[0][0]) != "PING" {
			t.Fatalf("PING %d: %d commands, %v", i, len(batch), err)
		}
	}
	if rd.BufferCap() != readBufferBytesInitial {
		t.Fatalf("quiet buffer is %d, want %d", rd.BufferCap(), readBufferBytesInitial)
	}
}

// Before AUTH a client may send only small commands: a bigger multibulk
// count or bulk length is refused as soon as its header arrives, before
// the server holds any of it (Redis 7's words).
func TestReaderUnauthenticatedLimits(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"*11\r\n", "Protocol error: unauthenticated multibulk length"},
		{"*2\r\n$3\r\nSET\r\n$500000000\r\n", "Protocol error: unauthenticated bulk length"},
		{"*2\r\n$3\r\nSET\r\n$16385\r\n", "Protocol error: unauthenticated bulk length"},
	} {
		rd := NewReader(strings.NewReader(c.in), DefaultLimits())
		rd.SetAuthenticated(false)
		_, err := rd.ReadBatch()
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v, want %q", c.in, err, c.want)
		}
		if rd.BufferCap() > 64<<10 {
			t.Errorf("%q: the reader grew its buffer to %d bytes before refusing", c.in, rd.BufferCap())
		}
	}
	// At the limits, and once authenticated, the same commands are read.
	ok := "*10\r\n" + strings.Repeat("$1\r\nx\r\n", 10) + "*2\r\n$3\r\nSET\r\n$16384\r\n" + strings.Repeat("v", 16384) + "\r\n"
	rd := NewReader(strings.NewReader(ok), DefaultLimits())
	rd.SetAuthenticated(false)
	for got := 0; got < 2; {
		cmds, err := rd.ReadBatch()
		if err != nil {
			t.Fatalf("commands at the unauthenticated limits: %d read, then %v", got, err)
		}
		got += len(cmds)
	}
	big := "*2\r\n$3\r\nSET\r\n$20000\r\n" + strings.Repeat("v", 20000) + "\r\n"
	rd = NewReader(strings.NewReader(big), DefaultLimits())
	rd.SetAuthenticated(true)
	if cmds, err := rd.ReadBatch(); err != nil || len(cmds) != 1 || len(cmds[0][1]) != 20000 {
		t.Fatalf("an authenticated client's big bulk: %v", err)
	}
}
