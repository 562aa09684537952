package server

import (
	"bufio"
	"bytes"
	"math"
	"strings"
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
			if _, err := readReply(br); err != nil {
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

func TestSyntaxToDocArgs(t *testing.T) {
	render := func(args []docArg) string {
		var f func([]docArg) string
		f = func(as []docArg) string {
			var parts []string
			for _, a := range as {
				s := a.name + ":" + a.typ
				if a.token != "" {
					s += "(" + a.token + ")"
				}
				if a.optional {
					s += "?"
				}
				if a.multi {
					s += "*"
				}
				if len(a.args) > 0 {
					s += "{" + f(a.args) + "}"
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, " ")
		}
		return f(args)
	}
	cases := map[string]string{
		"key":     "key:key",
		"key ...": "key:key*",
		"key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]": "key:key value:string condition:oneof?{nx:pure-token(NX) xx:pure-token(XX)} " +
			"get:pure-token(GET)? expiration:oneof?{seconds:integer(EX) milliseconds:integer(PX) keepttl:pure-token(KEEPTTL)}",
		"cursor [MATCH pattern] [COUNT count]":                     "cursor:integer pattern:pattern(MATCH)? count:integer(COUNT)?",
		"[protover [AUTH username password] [SETNAME clientname]]": "protover:block?{protover:integer username:block?{username:string(AUTH) password:string} clientname:string(SETNAME)?}",
	}
	for in, want := range cases {
		if got := render(parseSyntax(in)); got != want {
			t.Errorf("%q:\n got %s\nwant %s", in, got, want)
		}
	}
	// Every documented syntax parses and encodes without trouble.
	for name, d := range engineDocs {
		w := NewWriter()
		writeCommandDoc(w, d, nil)
		if _, err := readReply(bufio.NewReader(bytes.NewReader(w.Bytes()))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
