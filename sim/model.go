package sim

import (
	"sort"
	"strconv"
	"strings"
)

// kv is one key in the reference model: a string value and an absolute
// expiry in Unix milliseconds (0: none).
type kv struct {
	val string
	exp int64
	// typ and the collection fields hold the grammar workload's typed
	// values (gmodel.go); they are never changed in place.
	typ vtype
	h   map[string]string
	l   []string
	s   map[string]struct{}
	z   map[string]float64
}

// state is the reference keyspace. Small by design (workloads use a few
// dozen keys), so copying it is cheap.
type state map[string]kv

func (s state) clone() state {
	c := make(state, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

// alive follows Redis: a key expires when now > when, so at now == when it
// is still there.
func (s state) get(key string, nowMs int64) (kv, bool) {
	v, ok := s[key]
	if !ok || (v.exp != 0 && nowMs > v.exp) {
		return kv{}, false
	}
	return v, true
}

type mutation struct {
	key string
	del bool
	v   kv
}

func (s state) apply(muts []mutation) {
	for _, m := range muts {
		if m.del {
			delete(s, m.key)
		} else {
			s[m.key] = m.v
		}
	}
}

// expectation is what the model predicts for one command.
type expectation struct {
	reply Reply
	// scan: reply is checked as a SCAN page against alive keys instead of
	// compared exactly.
	scan  bool
	alive []string
	write bool
	muts  []mutation
	// orNull: a null reply is also right, and then nothing was written
	// (an EXEC under WATCH: the model does not track key versions).
	orNull bool
	// unordered: the reply is an array whose order Redis leaves open
	// (SMEMBERS, HGETALL): compared as a multiset of runs of this many
	// elements (1: members, 2: field/value pairs).
	unordered int
	// elemUnordered is unordered for each element of a transaction's
	// reply (predictBlock).
	elemUnordered []int
}

var (
	okReply   = Reply{Kind: '+', Str: "OK"}
	nullReply = Reply{Kind: '_'}
)

func errReply(s string) Reply  { return Reply{Kind: '-', Str: s} }
func intReply(n int64) Reply   { return Reply{Kind: ':', Int: n} }
func bulkReply(s string) Reply { return Reply{Kind: '$', Str: s} }
func isCanonicalInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// predict runs argv against s at nowMs without changing s. It models
// exactly the commands the workload and the recovery probe send.
func predict(s state, nowMs int64, argv []string) expectation {
	if _, ok := txnCommands(argv); ok {
		return predictTxn(s, nowMs, argv)
	}
	if e, ok := predictG(s, nowMs, argv); ok {
		return e
	}
	name := strings.ToLower(argv[0])
	switch name {
	case "scan":
		var alive []string
		for k := range s {
			if _, ok := s.get(k, nowMs); ok && !strings.HasPrefix(k, libKeyPrefix) {
				alive = append(alive, k)
			}
		}
		sort.Strings(alive)
		return expectation{scan: true, alive: alive}
	}
	if name == "fcall" || name == "fcall_ro" || name == "function" {
		return predictFunction(s, nowMs, argv)
	}
	return expectation{reply: errReply("ERR the simulator's model does not know " + name)}
}

// check compares a reply with the expectation; "" means it matches.
// Errors match on their code (first word): messages may be worded
// differently from Redis's.
func (e expectation) check(r Reply) string {
	if e.scan {
		return checkScan(e.alive, r)
	}
	if e.orNull && r.Kind == '_' {
		return ""
	}
	if e.unordered > 0 && sameUnordered(e.reply, r, e.unordered) {
		return ""
	}
	if e.elemUnordered != nil && r.Kind == '*' && len(r.Elems) == len(e.reply.Elems) {
		same := true
		for i, x := range e.reply.Elems {
			if u := e.elemUnordered[i]; u > 0 && sameUnordered(x, r.Elems[i], u) {
				continue
			}
			same = same && sameReply(x, r.Elems[i])
		}
		if same {
			return ""
		}
	}
	if sameReply(e.reply, r) {
		return ""
	}
	return "want " + e.reply.String() + ", got " + r.String()
}

func sameReply(a, b Reply) bool {
	if a.Kind == '-' || b.Kind == '-' {
		return a.Kind == b.Kind && errCode(a.Str) == errCode(b.Str)
	}
	if a.Kind == ',' || b.Kind == ',' {
		// A double: RESP3's ',' or RESP2's bulk string, compared by value.
		if (a.Kind != ',' && a.Kind != '$') || (b.Kind != ',' && b.Kind != '$') {
			return false
		}
		x, ok1 := parseFloatArg(a.Str)
		y, ok2 := parseFloatArg(b.Str)
		return ok1 && ok2 && x == y
	}
	if a.Kind != b.Kind || a.Str != b.Str || a.Int != b.Int || len(a.Elems) != len(b.Elems) {
		return false
	}
	for i := range a.Elems {
		if !sameReply(a.Elems[i], b.Elems[i]) {
			return false
		}
	}
	return true
}

// sameUnordered compares two arrays as multisets of runs of n elements.
func sameUnordered(a, b Reply, n int) bool {
	if a.Kind != '*' || b.Kind != '*' || len(a.Elems) != len(b.Elems) || len(a.Elems)%n != 0 {
		return false
	}
	used := make([]bool, len(b.Elems)/n)
outer:
	for i := 0; i < len(a.Elems); i += n {
		for j := range used {
			if used[j] {
				continue
			}
			match := true
			for k := 0; k < n && match; k++ {
				match = sameReply(a.Elems[i+k], b.Elems[j*n+k])
			}
			if match {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func errCode(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// checkScan accepts one SCAN page: every key returned is alive, and a page
// that ends the iteration (cursor "0") returned every alive key.
func checkScan(alive []string, r Reply) string {
	if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Kind != '$' || r.Elems[1].Kind != '*' {
		return "want [cursor [keys...]], got " + r.String()
	}
	live := map[string]bool{}
	for _, k := range alive {
		live[k] = true
	}
	got := map[string]bool{}
	for _, e := range r.Elems[1].Elems {
		if e.Kind != '$' || !live[e.Str] {
			return "SCAN returned " + e.String() + ", which is not a live key (live: " + strings.Join(alive, ",") + ")"
		}
		got[e.Str] = true
	}
	if r.Elems[0].Str == "0" && len(got) != len(live) {
		return "SCAN ended (cursor 0) without returning every live key: got " + r.String() + ", live " + strings.Join(alive, ",")
	}
	return ""
}
