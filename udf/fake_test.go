package udf

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

// fakeStore is a map keyspace with expiry and a settable clock, and the
// effects applier a replica would be (SET/DEL as the engine runs them).
type fakeStore struct {
	vals map[string][]byte
	pxat map[string]int64 // 0: no expiry
	now  int64
	rand uint64
}

func newFakeStore() *fakeStore {
	return &fakeStore{vals: map[string][]byte{}, pxat: map[string]int64{}, now: 1_700_000_000_000, rand: 42}
}

func (s *fakeStore) live(k string) bool {
	if _, ok := s.vals[k]; !ok {
		return false
	}
	if at := s.pxat[k]; at != 0 && s.now > at { // the engine's rule: alive through its deadline
		return false
	}
	return true
}

func (s *fakeStore) Get(key []byte) ([]byte, bool, error) {
	if !s.live(string(key)) {
		return nil, false, nil
	}
	return s.vals[string(key)], true, nil
}

func (s *fakeStore) Exists(key []byte) bool { return s.live(string(key)) }

func (s *fakeStore) Scan(prefix, after []byte, limit int) [][]byte {
	var keys []string
	for k := range s.vals {
		if s.live(k) && strings.HasPrefix(k, string(prefix)) && (after == nil || k > string(after)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

func (s *fakeStore) Now() int64 { return s.now }

func (s *fakeStore) Rand() uint64 {
	s.rand = s.rand*6364136223846793005 + 1442695040888963407
	return s.rand
}

// apply runs effects the way the replica will, with the engine's SET/DEL
// semantics for the options udf emits.
func (s *fakeStore) apply(t interface {
	Helper()
	Fatalf(string, ...any)
}, effects [][][]byte) {
	t.Helper()
	for _, e := range effects {
		k := string(e[1])
		switch {
		case string(e[0]) == "DEL" && len(e) == 2 && s.live(k):
			delete(s.vals, k)
			delete(s.pxat, k)
		case string(e[0]) == "SET" && len(e) == 3:
			s.vals[k] = e[2]
			delete(s.pxat, k)
		case string(e[0]) == "SET" && len(e) == 4 && string(e[3]) == "KEEPTTL":
			if !s.live(k) { // as the engine: an expired key is gone, TTL and all
				delete(s.pxat, k)
			}
			s.vals[k] = e[2]
		case string(e[0]) == "SET" && len(e) == 5 && string(e[3]) == "PXAT":
			at, err := strconv.ParseInt(string(e[4]), 10, 64)
			if err != nil {
				t.Fatalf("bad PXAT in %q", e)
			}
			s.vals[k] = e[2]
			s.pxat[k] = at
		default:
			t.Fatalf("unexpected effect %q", e)
		}
	}
}

func (s *fakeStore) snapshot() string {
	var keys []string
	for k := range s.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + string(s.vals[k]))
		if at := s.pxat[k]; at != 0 {
			b.WriteString("@" + strconv.FormatInt(at, 10))
		}
		b.WriteString(" ")
	}
	return b.String()
}

// recorder is an engine.Writer that renders replies as text.
type recorder struct{ bytes.Buffer }

func (r *recorder) WriteSimple(s string)     { r.WriteString("+" + s + " ") }
func (r *recorder) WriteError(msg string)    { r.WriteString("-" + msg + " ") }
func (r *recorder) WriteInt(n int64)         { r.WriteString(":" + strconv.FormatInt(n, 10) + " ") }
func (r *recorder) WriteBulk(b []byte)       { r.WriteString(strconv.Quote(string(b)) + " ") }
func (r *recorder) WriteBulkString(s string) { r.WriteString(strconv.Quote(s) + " ") }
func (r *recorder) WriteNull()               { r.WriteString("nil ") }
func (r *recorder) WriteArray(n int)         { r.WriteString("*" + strconv.Itoa(n) + " ") }
func (r *recorder) WriteNullArray()          { r.WriteString("*nil ") }
func (r *recorder) WriteDouble(f float64)    { r.WriteString(strconv.FormatFloat(f, 'g', -1, 64) + " ") }
func (r *recorder) WriteMap(n int)           { r.WriteString("%" + strconv.Itoa(n) + " ") }
func (r *recorder) WriteSet(n int)           { r.WriteString("~" + strconv.Itoa(n) + " ") }

var _ engine.Writer = (*recorder)(nil)

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "functions", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newHost(t testing.TB, cfg Config, libs ...string) *Host {
	t.Helper()
	ctx := context.Background()
	h, err := NewHost(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(ctx) })
	for _, l := range libs {
		if _, err := h.Load(ctx, l, example(t, l), false); err != nil {
			t.Fatalf("load %s: %v", l, err)
		}
	}
	return h
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// call runs fn and applies its effects to s, returning the reply text or
// the error text.
func call(t testing.TB, h *Host, s *fakeStore, fn string, keys, args []string) string {
	t.Helper()
	return callRO(t, h, s, fn, keys, args, false)
}

func callRO(t testing.TB, h *Host, s *fakeStore, fn string, keys, args []string, ro bool) string {
	t.Helper()
	res, err := h.Call(context.Background(), fn, bs(keys...), bs(args...), s, ro)
	if err != nil {
		var ue *Error
		if !asUserError(err, &ue) {
			t.Fatalf("%s: internal error %v", fn, err)
		}
		if len(res.Effects) != 0 {
			t.Fatalf("%s failed but returned effects %q", fn, res.Effects)
		}
		return "-" + ue.Error()
	}
	s.apply(t, res.Effects)
	return res.Reply.String()
}

func asUserError(err error, ue **Error) bool {
	e, ok := err.(*Error)
	*ue = e
	return ok
}
