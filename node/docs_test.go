package node

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/keel-db/keel/resp"
)

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
		w := resp.NewWriter()
		writeCommandDoc(w, d, nil)
		if _, err := resp.ReadReply(bufio.NewReader(bytes.NewReader(w.Bytes()))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
