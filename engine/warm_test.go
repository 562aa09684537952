package engine

import (
	"slices"
	"strconv"
	"testing"
)

// rawState copies what a command can read or change in db's keyspace:
// the point index (both tables during a resize), every record (its access
// metadata included) and every page and large cell.
func rawState(db *DB) [][]byte {
	var out [][]byte
	u64 := func(v []uint64) []byte {
		var b []byte
		for _, x := range v {
			b = strconv.AppendUint(b, x, 16)
			b = append(b, ',')
		}
		return b
	}
	out = append(out, u64(db.index.slots), u64(db.index.old), []byte(strconv.Itoa(db.index.oldNext)))
	d := &db.s.slabDirs
	for _, recs := range d.recs {
		var b []byte
		for _, rc := range recs {
			b = strconv.AppendUint(b, rc.version, 16)
			b = strconv.AppendUint(b, rc.cell, 16)
			b = strconv.AppendUint(b, uint64(rc.vlen), 16)
			b = strconv.AppendUint(b, uint64(rc.ttl), 16)
			b = strconv.AppendUint(b, uint64(rc.access), 16)
			b = append(b, rc.class, byte(rc.typ), rc.strEnc)
		}
		out = append(out, b)
	}
	for _, p := range d.pages {
		out = append(out, slices.Clone(p[:]))
	}
	for _, l := range d.large {
		out = append(out, slices.Clone(l))
	}
	return out
}

// Warm only reads: after warming present, absent, expired and large keys,
// in the middle of an index resize, the keyspace is byte for byte what it
// was, access metadata included (under an LFU policy, where a real read
// would count).
func TestWarmChangesNothing(t *testing.T) {
	db := newTestDB()
	run := func(args ...string) {
		argv := make([][]byte, len(args))
		for i, a := range args {
			argv[i] = []byte(a)
		}
		db.Exec(1000, argv, &sink)
	}
	run("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
	big := string(make([]byte, 3*cellMaxBytes))
	var keys [][]byte
	for i := 0; ; i++ {
		k := "k:" + strconv.Itoa(i)
		keys = append(keys, []byte(k), []byte("absent:"+strconv.Itoa(i)))
		switch i % 4 {
		case 0:
			run("SET", k, "v")
		case 1:
			run("SET", k, big)
		case 2:
			run("SET", k, "v", "PX", "1") // expired by the time of any read below
		case 3:
			run("RPUSH", k, "a", "b")
		}
		if i > 1000 && db.index.old != nil {
			break
		}
	}
	before := rawState(db)
	db.Warm(keys)
	var w Warmer
	for _, k := range keys {
		w.Add([][]byte{[]byte("GET"), k})
	}
	w.Warm(db)
	if w.Len() != 0 {
		t.Fatalf("Warmer holds %d keys after Warm", w.Len())
	}
	after := rawState(db)
	if len(before) != len(after) {
		t.Fatalf("state has %d parts after Warm, %d before", len(after), len(before))
	}
	for i := range before {
		if string(before[i]) != string(after[i]) {
			t.Fatalf("Warm changed part %d of the keyspace", i)
		}
	}
}

func TestWarmerAddsFixedKeyPositions(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"GET", "a"}, []string{"a"}},
		{[]string{"get", "a"}, []string{"a"}},
		{[]string{"SET", "a", "1", "EX", "10"}, []string{"a"}},
		{[]string{"MSET", "a", "1", "b", "2"}, []string{"a", "b"}},
		{[]string{"MGET", "a", "b", "c"}, []string{"a", "b", "c"}},
		{[]string{"ZUNIONSTORE", "d", "2", "a", "b"}, nil}, // keys move with numkeys
		{[]string{"PING"}, nil},
		{[]string{"NOSUCH", "a"}, nil},
		{[]string{"DBSIZE"}, nil},
	} {
		var w Warmer
		argv := make([][]byte, len(c.cmd))
		for i, a := range c.cmd {
			argv[i] = []byte(a)
		}
		w.Add(argv)
		var got []string
		for _, k := range w.keys {
			got = append(got, string(k))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: warmed %q, want %q", c.cmd, got, c.want)
		}
	}
	var w Warmer
	argv := [][]byte{[]byte("MGET")}
	for i := range 100 {
		argv = append(argv, []byte(strconv.Itoa(i)))
	}
	w.Add(argv)
	if w.Len() != warmKeysPerCommandMax {
		t.Errorf("MGET of 100 keys warmed %d, want the first %d", w.Len(), warmKeysPerCommandMax)
	}
}

// View.Ascend hands out its entries a batch at a time: every key once, in
// order, whatever the count's place against the batch size, and nothing
// after fn says stop.
func TestViewAscendBatches(t *testing.T) {
	for _, keys := range []int{0, 1, WarmBatchKeys - 1, WarmBatchKeys, WarmBatchKeys + 1, 2 * WarmBatchKeys, 2*WarmBatchKeys + 1, 1000} {
		db := newTestDB()
		var want []string
		for i := range keys {
			k := "k:" + strconv.Itoa(1000000+i)
			db.Exec(1, [][]byte{[]byte("SET"), []byte(k), []byte("v" + k)}, &sink)
			want = append(want, k)
		}
		v := db.View()
		var got []string
		v.Ascend(func(e Entry) bool {
			if string(e.Value) != "v"+string(e.Key) {
				t.Fatalf("%d keys: %q holds %q", keys, e.Key, e.Value)
			}
			got = append(got, string(e.Key))
			return true
		})
		if !slices.Equal(got, want) {
			t.Fatalf("%d keys: Ascend gave %d keys (%.3q...), want %d in order", keys, len(got), got[:min(3, len(got))], len(want))
		}
		for _, stop := range []int{1, WarmBatchKeys - 1, WarmBatchKeys, WarmBatchKeys + 1, keys} {
			if stop > keys || stop == 0 {
				continue
			}
			calls := 0
			v.Ascend(func(e Entry) bool {
				calls++
				return calls < stop
			})
			if calls != stop {
				t.Errorf("%d keys, stop at %d: fn called %d times", keys, stop, calls)
			}
		}
		v.Release()
	}
}
