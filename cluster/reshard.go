package cluster

import (
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// Reshard drives one slot move between two groups (docs/cluster.md,
// "Sharding"): a pure state machine that says which CLUSTER RESHARD step
// to send to which group next and takes each step's outcome. The CLI
// (keel cluster reshard) and the simulator's resharder drive it over
// their own transports. The steps, each idempotent so that resending
// after an unknown outcome is safe:
//
//	IMPORTING on to, MIGRATING on from, then until MOVEKEYS returns
//	nothing: MOVEKEYS on from, IMPORTKEYS on to (skipped when MOVEKEYS
//	returned nothing), DELKEYS on from; then NODE <to> on to, and NODE
//	<to> on from.
//
// While it runs, the source answers requests for keys it still holds and
// sends the others to the target with -ASK; a key between MOVEKEYS and
// DELKEYS is locked (TRYAGAIN).
type Reshard struct {
	r        SlotRange
	from, to uint64
	batch    int

	step  int
	keys  [][]byte // the batch MOVEKEYS returned: key, value, meta triples
	moved int
	err   error
}

// The steps in order; stMoveKeys..stDelKeys repeat.
const (
	stImporting = iota
	stMigrating
	stMoveKeys
	stImportKeys
	stDelKeys
	stNodeTo
	stNodeFrom
	stDone
)

// ReshardBatchDefault is the keys one MOVEKEYS asks for when the caller
// gives no batch.
const ReshardBatchDefault = 100

// NewReshard starts a move of slots r from group from to group to,
// moving up to batch keys per MOVEKEYS (ReshardBatchDefault when <= 0).
// A move that cannot start (a bad range, from == to, a group 0) is done at
// once with Err set.
func NewReshard(r SlotRange, from, to uint64, batch int) *Reshard {
	if batch <= 0 {
		batch = ReshardBatchDefault
	}
	m := &Reshard{r: r, from: from, to: to, batch: min(batch, moveKeysCountMax)}
	switch err := r.Check(); {
	case err != nil:
		m.fail(err)
	case from == 0 || to == 0:
		m.fail(errors.New("reshard: groups are numbered from 1"))
	case from == to:
		m.fail(errors.Newf("reshard: slots %s are already in group %d", r, from))
	}
	return m
}

func (m *Reshard) fail(err error) {
	m.err = err
	m.step = stDone
}

// Next is the command to send to group's leader now; done when the move
// has finished (or failed: Err).
func (m *Reshard) Next() (group uint64, argv [][]byte, done bool) {
	cmd := func(g uint64, step string, args ...[]byte) (uint64, [][]byte, bool) {
		argv := [][]byte{[]byte("CLUSTER"), []byte("RESHARD"), []byte(strconv.FormatUint(g, 10)), []byte(step)}
		return g, append(argv, args...), false
	}
	first, last := []byte(strconv.Itoa(m.r.First)), []byte(strconv.Itoa(m.r.Last))
	gid := func(g uint64) []byte { return []byte(strconv.FormatUint(g, 10)) }
	switch m.step {
	case stImporting:
		return cmd(m.to, "IMPORTING", first, last, gid(m.from))
	case stMigrating:
		return cmd(m.from, "MIGRATING", first, last, gid(m.to))
	case stMoveKeys:
		return cmd(m.from, "MOVEKEYS", first, last, []byte(strconv.Itoa(m.batch)))
	case stImportKeys:
		return cmd(m.to, "IMPORTKEYS", m.keys...)
	case stDelKeys:
		keys := make([][]byte, 0, len(m.keys)/3)
		for i := 0; i < len(m.keys); i += 3 {
			keys = append(keys, m.keys[i])
		}
		return cmd(m.from, "DELKEYS", keys...)
	case stNodeTo:
		return cmd(m.to, "NODE", first, last, gid(m.to))
	case stNodeFrom:
		return cmd(m.from, "NODE", first, last, gid(m.to))
	}
	return 0, nil, true
}

// Reply feeds the outcome of the command Next returned. errMsg "" is
// success (arr: the array reply, nil for +OK or an integer). A retryable
// error leaves the step to be sent again (see Retryable); any other ends
// the move with Err.
func (m *Reshard) Reply(errMsg string, arr [][]byte) {
	if m.step == stDone {
		return
	}
	if errMsg != "" {
		if Retryable(errMsg) {
			return
		}
		_, argv, _ := m.Next()
		step := ""
		if len(argv) > 3 {
			step = string(argv[3])
		}
		m.fail(errors.Newf("reshard %s from group %d to %d: %s: %s", m.r, m.from, m.to, step, errMsg))
		return
	}
	switch m.step {
	case stMoveKeys:
		if len(arr)%3 != 0 {
			m.fail(errors.Newf("reshard %s: MOVEKEYS replied %d elements, not key/value/meta triples", m.r, len(arr)))
			return
		}
		if len(arr) == 0 {
			m.keys = nil
			m.step = stNodeTo
			return
		}
		m.keys = make([][]byte, len(arr))
		for i, a := range arr {
			m.keys[i] = append([]byte(nil), a...) // the caller may reuse its buffers
		}
		m.step = stImportKeys
	case stImportKeys:
		m.step = stDelKeys
	case stDelKeys:
		for i := 2; i < len(m.keys); i += 3 {
			// A collection's piece with more to come is not a key moved yet.
			if !strings.HasSuffix(string(m.keys[i]), ":1") {
				m.moved++
			}
		}
		m.keys = nil
		m.step = stMoveKeys
	default:
		m.step++
	}
}

// Retryable reports whether a step that failed with errMsg may simply be
// sent again: the group was busy or moving (TRYAGAIN, MOVED, ASK, a
// leader change whose outcome is unknown), its disk was full or failed
// (the write was refused), or the connection was lost (reported as
// "IOERR ..."). Every step is idempotent, so resending is always safe.
func Retryable(errMsg string) bool {
	for _, p := range []string{"TRYAGAIN", "MOVED ", "ASK ", "IOERR", "CLUSTERDOWN", "LOADING"} {
		if strings.HasPrefix(errMsg, p) {
			return true
		}
	}
	// Refusals of writes that were never applied are safe to resend too.
	switch errMsg {
	case ErrMsgDiskFull, ErrMsgDiskFatal, "ERR write was not applied":
		return true
	}
	return strings.Contains(errMsg, "may or may not") || strings.HasPrefix(errMsg, "ERR write not accepted by the log")
}

// Err is why the move failed (nil while it runs and when it succeeded).
func (m *Reshard) Err() error { return m.err }

// Moved is the number of keys moved so far.
func (m *Reshard) Moved() int { return m.moved }
