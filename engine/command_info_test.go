package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	osexec "os/exec"
	"sort"
	"strings"
	"testing"
)

// TestCommandTableMatchesRedis compares every engine command's arity,
// flags, key specification and ACL categories with the test's
// redis-server's COMMAND INFO, and requires documentation for each.
func TestCommandTableMatchesRedis(t *testing.T) {
	for _, c := range Commands() {
		if _, ok := serverDocumented[c.Name]; !ok && c.Doc.Summary == "" {
			t.Errorf("%s has no documentation (go test -run TestGenerateCommandDocs -gendocs)", c.Name)
		}
	}
	addr := redisAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	var names []string
	for _, c := range Commands() {
		names = append(names, c.Name)
	}
	out, err := osexec.Command("redis-cli", append([]string{"-p", port, "--json", "COMMAND", "INFO"}, names...)...).Output()
	if err != nil {
		t.Skipf("redis-cli: %v", err)
	}
	var infos []json.RawMessage
	if err := json.Unmarshal(out, &infos); err != nil {
		t.Fatal(err)
	}
	// Where keel follows Redis 7.2 rather than the 7.0 beside the test.
	arity72 := map[string]int{"zrank": -3, "zrevrank": -3}
	for i, raw := range infos {
		c := Lookup([]byte(names[i]))
		if c.Name == "object" {
			// A container in Redis (its subcommands carry the key, the
			// flags and @keyspace @read); keel's table has one row, read-only
			// (so it stays out of the log) with the key at 2.
			continue
		}
		var info []json.RawMessage
		if err := json.Unmarshal(raw, &info); err != nil || len(info) < 7 {
			t.Errorf("%s: redis-server does not know it", names[i])
			continue
		}
		var arity, first, last, step int
		var flags, cats []string
		json.Unmarshal(info[1], &arity)
		json.Unmarshal(info[2], &flags)
		json.Unmarshal(info[3], &first)
		json.Unmarshal(info[4], &last)
		json.Unmarshal(info[5], &step)
		json.Unmarshal(info[6], &cats)
		if a, ok := arity72[c.Name]; ok {
			arity = a
		}
		if c.Arity != arity {
			t.Errorf("%s: arity %d, Redis %d", c.Name, c.Arity, arity)
		}
		if c.FirstKey != first || c.LastKey != last || c.Step != step {
			t.Errorf("%s: keys %d %d %d, Redis %d %d %d", c.Name, c.FirstKey, c.LastKey, c.Step, first, last, step)
		}
		var want []string
		for _, f := range flags {
			switch f {
			case "write", "readonly", "denyoom", "fast", "movablekeys", "blocking":
				want = append(want, f)
			}
		}
		var got []string
		for _, f := range []struct {
			on   bool
			name string
		}{{c.Flags&Write != 0, "write"}, {c.Flags&ReadOnly != 0, "readonly"}, {c.Flags&DenyOOM != 0, "denyoom"},
			{c.Flags&Fast != 0, "fast"}, {c.MovableKeys(), "movablekeys"}, {c.Flags&Blocking != 0, "blocking"}} {
			if f.on {
				got = append(got, f.name)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: flags %v, Redis %v", c.Name, got, want)
		}
		gc := append([]string(nil), c.Categories...)
		sort.Strings(gc)
		sort.Strings(cats)
		if fmt.Sprint(gc) != fmt.Sprint(cats) {
			t.Errorf("%s: categories %v, Redis %v", c.Name, gc, cats)
		}
	}
}

// TestLookupIndex checks the open-addressed index against the table: every
// command is found under any case, and names that are not commands are not.
func TestLookupIndex(t *testing.T) {
	for name, c := range commandTable {
		if got := Lookup([]byte(name)); got != c {
			t.Fatalf("Lookup(%q) = %v", name, got)
		}
		if got := Lookup(bytes.ToUpper([]byte(name))); got != c {
			t.Fatalf("Lookup(upper %q) = %v", name, got)
		}
		for _, miss := range []string{name + "x", "x" + name, name[:len(name)-1]} {
			if _, ok := commandTable[miss]; ok {
				continue
			}
			if got := Lookup([]byte(miss)); got != nil {
				t.Fatalf("Lookup(%q) = %s, want nil", miss, got.Name)
			}
		}
	}
	for _, miss := range []string{"", "nosuchcommand", strings.Repeat("g", 32), strings.Repeat("g", 33)} {
		if got := Lookup([]byte(miss)); got != nil {
			t.Fatalf("Lookup(%q) = %s, want nil", miss, got.Name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lookup([]byte("LPUSH")) }); n != 0 {
		t.Fatalf("Lookup allocated %.1f times", n)
	}
}
