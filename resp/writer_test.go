package resp

import (
	"bufio"
	"bytes"
	"math"
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
	w.WriteBulk(make([]byte, 1<<20))
	w.Reset()
	if cap(w.Bytes()) > writeBufferBytesShrink {
		t.Fatalf("kept %d bytes after a big reply", cap(w.Bytes()))
	}
}
