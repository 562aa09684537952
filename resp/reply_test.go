package resp

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// Every reply the Writer can produce decodes to the value written, from a
// byte slice and from a stream alike, and every proper prefix of the
// encoding is incomplete rather than wrong.
func TestParseReplyRoundTrip(t *testing.T) {
	for _, proto := range []int{2, 3} {
		w := NewWriter()
		w.SetProto(proto)
		w.WriteArray(3)
		w.WriteBulkString("a\r\nb")
		w.WriteInt(-7)
		w.WriteMap(1)
		w.WriteSimple("k")
		w.WriteNull()
		w.WriteError("MOVED 42 10.0.0.3:6379")
		w.WriteVerbatim("line\r\n", "txt")
		w.WriteDouble(2.5)
		w.WriteBool(false)
		b := w.Bytes()

		want := []string{`["a\r\nb" (integer) -7 {k (nil)}]`, "(error) MOVED 42 10.0.0.3:6379", `"line\r\n"`, "2.5", "false"}
		if proto == 2 {
			want = []string{`["a\r\nb" (integer) -7 [k (nil)]]`, "(error) MOVED 42 10.0.0.3:6379", `"line\r\n"`, `"2.5"`, "(integer) 0"}
		}
		rest := b
		br := bufio.NewReader(bytes.NewReader(b))
		for i, exp := range want {
			r, n, err := ParseReply(rest)
			if err != nil {
				t.Fatalf("RESP%d reply %d: %v", proto, i, err)
			}
			if r.String() != exp {
				t.Errorf("RESP%d reply %d: got %s, want %s", proto, i, r, exp)
			}
			for k := 0; k < n; k++ {
				if _, _, err := ParseReply(rest[:k]); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("RESP%d reply %d, prefix of %d bytes: %v, want ErrIncomplete", proto, i, k, err)
				}
			}
			rest = rest[n:]
			sr, err := ReadReply(br)
			if err != nil || sr.String() != exp {
				t.Errorf("RESP%d reply %d from a stream: %v %v", proto, i, sr, err)
			}
		}
		if len(rest) != 0 {
			t.Fatalf("RESP%d: %d bytes left over", proto, len(rest))
		}
	}
}

func TestParseReplyRefusesGarbage(t *testing.T) {
	for _, in := range []string{"?x\r\n", "$3\r\nabcd\r\n", ":1x\r\n", "*-2\r\n", "$2\r\nab\n\n", "+ok\n", "$9999999999\r\n"} {
		if _, _, err := ParseReply([]byte(in)); err == nil || errors.Is(err, ErrIncomplete) {
			t.Errorf("%q: got %v, want a parse error", in, err)
		}
	}
}
