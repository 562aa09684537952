package resp

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"testing"
)

func TestWriterRESP2AndRESP3(t *testing.T) {
	write := func(w *Writer) {
		w.WriteSimple("OK")
		w.WriteError("ERR bad\r\nthing")
		w.WriteInt(-42)
		w.WriteBulk([]byte("a\r\nb"))
		w.WriteBulkString("")
		w.WriteNull()
		w.WriteNullArray()
		w.WriteArray(2)
		w.WriteDouble(1.5)
		w.WriteDouble(math.Inf(-1))
		w.WriteMap(1)
		w.WriteBulkString("k")
		w.WriteInt(1)
		w.WriteSet(1)
		w.WriteBulkString("m")
		w.WritePush(2)
		w.WriteBulkString("message")
		w.WriteBool(true)
		w.WriteVerbatim("x:1\r\n", "txt")
	}
	want := map[int]string{
		2: "+OK\r\n-ERR bad  thing\r\n:-42\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*-1\r\n*2\r\n$3\r\n1.5\r\n$4\r\n-inf\r\n" +
			"*2\r\n$1\r\nk\r\n:1\r\n*1\r\n$1\r\nm\r\n*2\r\n$7\r\nmessage\r\n:1\r\n$5\r\nx:1\r\n\r\n",
		3: "+OK\r\n-ERR bad  thing\r\n:-42\r\n$4\r\na\r\nb\r\n$0\r\n\r\n_\r\n_\r\n*2\r\n,1.5\r\n,-inf\r\n" +
			"%1\r\n$1\r\nk\r\n:1\r\n~1\r\n$1\r\nm\r\n>2\r\n$7\r\nmessage\r\n#t\r\n=9\r\ntxt:x:1\r\n\r\n",
	}
	for proto, exp := range want {
		w := NewWriter()
		w.SetProto(proto)
		write(w)
		if got := string(w.Bytes()); got != exp {
			t.Errorf("RESP%d:\n got %q\nwant %q", proto, got, exp)
		}
		// The test-side parser reads every reply back: the framing holds.
		br := bufio.NewReader(bytes.NewReader(w.Bytes()))
		for i := 0; i < 12; i++ {
			if _, err := ReadReply(br); err != nil {
				t.Fatalf("RESP%d reply %d: %v", proto, i, err)
			}
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatalf("RESP%d: trailing bytes", proto)
		}
	}
}

func TestWriterShrinks(t *testing.T) {
	w := NewWriter()
	w.WriteBulk(make([]byte, 2*writeBufferBytesKeepMax))
	w.Reset()
	if cap(w.Bytes()) > writeBufferBytesShrink {
		t.Fatalf("kept %d bytes after a reply past the keep bound", cap(w.Bytes()))
	}
	// Batches of big replies keep their buffer: no regrowth per batch.
	big := make([]byte, 300<<10)
	w.WriteBulk(big)
	w.Reset()
	kept := cap(w.Bytes())
	if kept < len(big) {
		t.Fatalf("dropped a %d-byte buffer that its batch filled", kept)
	}
	if allocs := testing.AllocsPerRun(20, func() {
		w.WriteBulk(big)
		w.Reset()
	}); allocs != 0 {
		t.Fatalf("a batch of the same size allocated %.1f times", allocs)
	}
	// A small batch after them gives the big buffer back.
	w.WriteBulk([]byte("x"))
	w.Reset()
	if cap(w.Bytes()) > writeBufferBytesShrink {
		t.Fatalf("kept %d bytes after a small batch", cap(w.Bytes()))
	}
}

// TestWriterHeaders checks the small-length fast path against strconv at
// every digit count's edges and past it.
func TestWriterHeaders(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 99, 100, 200, 999, 1000, 4321, 9999, 10000, 123456, -1, -10} {
		w := NewWriter()
		w.WriteArray(int(n))
		if got, want := string(w.Bytes()), "*"+strconv.FormatInt(n, 10)+"\r\n"; got != want {
			t.Errorf("WriteArray(%d) = %q, want %q", n, got, want)
		}
		if n >= 0 {
			w = NewWriter()
			w.WriteSimple("OK") // the bulk string goes after other bytes
			body := bytes.Repeat([]byte{'v'}, int(n))
			w.WriteBulk(body)
			if got, want := string(w.Bytes()), "+OK\r\n$"+strconv.FormatInt(n, 10)+"\r\n"+string(body)+"\r\n"; got != want {
				t.Errorf("WriteBulk of %d bytes = %.40q..., want %.40q...", n, got, want)
			}
		}
		w = NewWriter()
		w.WriteInt(n)
		if got, want := string(w.Bytes()), ":"+strconv.FormatInt(n, 10)+"\r\n"; got != want {
			t.Errorf("WriteInt(%d) = %q, want %q", n, got, want)
		}
	}
}
