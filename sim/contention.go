package sim

import (
	"strconv"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// Contention counts how often the workload's requests met on a key: the
// batches the node ran (one group commit each), those holding requests of
// two or more connections, and those in which two connections' requests
// named the same key; and the EXECs run under a WATCH and how many of
// them a change of a watched key aborted (a null reply). Issue 20 asked
// for it: bank-watch with spread-out think times put two requests in one
// batch 3 times in 3,238.
type Contention struct {
	Batches, MultiBatches, SameKeyBatches int64
	WatchedExecs, AbortedExecs            int64
}

// batch counts one batch the node is handed.
func (c *Contention) batch(items []stepItem) {
	c.Batches++
	conns := 0
	owner := map[string]uint64{} // key -> the first connection naming it
	same := false
	for _, it := range items {
		if len(it.st.Reqs) == 0 {
			continue
		}
		conns++
		id := it.c.id
		for _, q := range it.st.Reqs {
			for _, k := range requestKeys(q) {
				if o, ok := owner[k]; !ok {
					owner[k] = id
				} else if o != id {
					same = true
				}
			}
		}
	}
	if conns > 1 {
		c.MultiBatches++
	}
	if same {
		c.SameKeyBatches++
	}
}

// requestKeys are the keys a request names (a transaction's: every
// command's, and its watched keys).
func requestKeys(q cluster.Request) []string {
	cmds := [][][]byte{q.Argv}
	var keys []string
	if q.Txn != nil {
		cmds = q.Txn.Cmds
		for _, w := range q.Txn.Watched {
			keys = append(keys, string(w.Key))
		}
	}
	for _, argv := range cmds {
		if len(argv) == 0 {
			continue
		}
		cmd := engine.Lookup(argv[0])
		if cmd == nil || !cmd.ArityOK(len(argv)) {
			continue
		}
		for _, i := range cmd.Keys(argv) {
			keys = append(keys, string(argv[i]))
		}
	}
	return keys
}

// replied counts a watched EXEC's outcome (r nil: unknown, not counted).
func (c *Contention) replied(op *opSpec, r *Reply) {
	if _, marker, ok := txnParse(op.argv); !ok || marker != txnWatched || r == nil {
		return
	}
	c.WatchedExecs++
	if r.Kind == '_' {
		c.AbortedExecs++
	}
}

// String renders the counts with their rates.
func (c Contention) String() string {
	pct := func(a, b int64) string {
		if b == 0 {
			return "0%"
		}
		return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + "%"
	}
	return itoa(c.Batches) + " batches, " + itoa(c.MultiBatches) + " with requests of 2+ connections (" + pct(c.MultiBatches, c.Batches) +
		"), " + itoa(c.SameKeyBatches) + " with two connections on one key (" + pct(c.SameKeyBatches, c.Batches) + "); " +
		itoa(c.WatchedExecs) + " watched EXECs, " + itoa(c.AbortedExecs) + " aborted (" + pct(c.AbortedExecs, c.WatchedExecs) + ")"
}
