package cluster

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/udf"
)

// This file routes FUNCTION and FCALL/FCALL_RO (docs/functions.md) into
// the replica:
//
//   - FUNCTION LOAD/DELETE/FLUSH/RESTORE are logged as they are (the LOAD
//     payload carries the module) and applied, on the leader, in recovery
//     and on followers alike, by udf.Host.Function: the registry is a
//     function of the log. LIST/DUMP/STATS/KILL/HELP run locally.
//   - FCALL runs the guest once, on the leader, at its turn in the batch:
//     every earlier write of the batch is applied first, so the call reads
//     exactly the state its effects will apply to. Only the effects (the
//     SET/DEL commands the call made) are logged, in one entry of a kind
//     clients cannot send (entryVersionEffects), and applied together by
//     udf.ApplyEffects. Recovery and followers never run guest code, so
//     fuel, memory limits or a wazero upgrade cannot make a replay diverge.
//   - Snapshots carry the registry (udf.Host.Dump) as one entry of the
//     reserved type disk.SnapTypeFunctions.
//
// The effects entry is
//
//	u8      entryVersionEffects (2)
//	u64     proposal id
//	i64     now, Unix ms (the call's time; PXAT deadlines in the effects
//	        are absolute already)
//	        the udf.EncodeEffects record
const entryVersionEffects = 2

const effectsHeaderBytes = 17

// functions is the replica's function host, created on first use: most
// replicas (and most simulated restarts) never load a library, and a
// wazero runtime is not free to start.
type functions struct {
	host *udf.Host
	rand *fallbackRand
}

// fallbackRand is used when Options.Rand is nil: a fixed splitmix64
// sequence, so a guest's random is still deterministic.
type fallbackRand struct{ s uint64 }

func (f *fallbackRand) Uint64() uint64 {
	f.s += 0x9e3779b97f4a7c15
	z := f.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fnHost returns the function host, starting it if needed.
func (r *Replica) fnHost() (*udf.Host, error) {
	if r.fn.host != nil {
		return r.fn.host, nil
	}
	cfg := udf.NewConfig()
	if r.opts.Functions != nil {
		cfg = *r.opts.Functions
	}
	h, err := udf.NewHost(context.Background(), cfg)
	if err != nil {
		return nil, errors.Wrap(err, "cluster: start function host")
	}
	r.fn.host = h
	return h, nil
}

// FunctionHost is the replica's function host (nil until a function
// command or a snapshot started it). Callers must hold the replica's owner.
func (r *Replica) FunctionHost() *udf.Host { return r.fn.host }

func (r *Replica) closeFunctions() {
	if r.fn.host != nil {
		_ = r.fn.host.Close(context.Background())
		r.fn.host = nil
	}
}

// Command kinds routed here rather than to the engine.
const (
	fnNone = iota
	fnFunction
	fnCall
)

func functionKind(argv [][]byte) int {
	if len(argv) == 0 || len(argv[0]) > len("function") {
		return fnNone
	}
	var buf [8]byte
	name := buf[:len(argv[0])]
	for i, c := range argv[0] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
	}
	switch string(name) {
	case "function":
		return fnFunction
	case "fcall", "fcall_ro":
		return fnCall
	}
	return fnNone
}

// isFunctionWrite reports a FUNCTION subcommand that goes through the log.
func isFunctionWrite(argv [][]byte) bool {
	return functionKind(argv) == fnFunction && udf.IsFunctionWrite(argv)
}

// execLogged applies one logged command: FUNCTION to the host, anything
// else to the engine.
func (r *Replica) execLogged(ms int64, argv [][]byte, w engine.Writer) {
	if functionKind(argv) == fnFunction {
		r.runFunction(argv, w)
		return
	}
	r.db.Exec(ms, argv, w)
}

func (r *Replica) runFunction(argv [][]byte, w engine.Writer) {
	h, err := r.fnHost()
	if err != nil {
		w.WriteError("ERR " + err.Error())
		return
	}
	h.Function(context.Background(), argv, w)
}

// callFunction runs an FCALL/FCALL_RO against the applied keyspace at ms.
func (r *Replica) callFunction(ms int64, argv [][]byte) (udf.Result, error) {
	h, err := r.fnHost()
	if err != nil {
		return udf.Result{}, err
	}
	rnd := r.opts.Rand
	if rnd == nil {
		if r.fn.rand == nil {
			r.fn.rand = &fallbackRand{}
		}
		rnd = r.fn.rand
	}
	st := &udf.EngineStore{DB: r.db, NowMillis: ms, R: rnd}
	return h.FCall(context.Background(), argv, st)
}

// runLocalFunction answers a function command that does not go through
// the log: FUNCTION's read subcommands always, and everything when the
// replica has no log (appendonly off), where writes apply directly.
func (r *Replica) runLocalFunction(ms int64, req *Request) bool {
	switch functionKind(req.Argv) {
	case fnFunction:
		r.runFunction(req.Argv, req.W)
		return true
	case fnCall:
		res, err := r.callFunction(ms, req.Argv)
		if err != nil {
			req.W.WriteError(udf.Message(err))
			return true
		}
		if err := udf.ApplyEffects(r.db, ms, res.Effects); err != nil {
			req.W.WriteError("ERR internal: " + err.Error())
			return true
		}
		r.changes += int64(len(res.Effects))
		res.WriteReply(req.W)
		return true
	}
	return false
}

// submitCall runs the FCALL at position i of b, called from Submit once
// everything before i has been proposed. It drives the log so that every
// earlier write is applied and every earlier read answered, runs the
// guest, and either answers now (failure, or nothing written) or proposes
// the effects entry, whose apply writes the reply.
func (r *Replica) submitCall(b *batch, i int) {
	if len(r.inflight) > 0 || r.rn.HasReady() {
		_ = r.drive()
	}
	r.runUpTo(b, i)
	req := &b.reqs[i]
	res, err := r.callFunction(b.nowMillis, req.Argv)
	switch {
	case err != nil:
		req.W.WriteError(udf.Message(err))
	case len(res.Effects) == 0:
		res.WriteReply(req.W)
	default:
		if msg := r.writeRefusal(); msg != "" {
			req.W.WriteError(msg)
			break
		}
		rec := udf.EncodeEffects(res.Effects)
		if len(rec)+effectsHeaderBytes > commandBytesMax {
			req.W.WriteError("ERR function writes too large for the log")
			break
		}
		r.nextID++
		id := r.nextID
		data := make([]byte, 0, effectsHeaderBytes+len(rec))
		data = append(data, entryVersionEffects)
		data = binary.LittleEndian.AppendUint64(data, id)
		data = binary.LittleEndian.AppendUint64(data, uint64(b.nowMillis))
		data = append(data, rec...)
		reply := res.Reply
		p := &proposal{b: b, positions: []int{i}, reply: &reply}
		b.state[i] = stWritePending
		r.inflight[id] = p
		if err := r.rn.Propose(data); err != nil {
			delete(r.inflight, id)
			r.failProposal(p, "ERR write not accepted by the log: "+err.Error())
		}
		// The reply is written when the entry applies (or by runUpTo if
		// it fails); later requests wait behind it.
		return
	}
	b.state[i] = stWriteDone
	b.next = i + 1
}

// applyEffectsEntry applies an FCALL's effects entry.
func (r *Replica) applyEffectsEntry(e pb.Entry) error {
	if len(e.Data) < effectsHeaderBytes {
		return errors.Wrapf(errBadEntry, "cluster: effects entry %d", e.Index)
	}
	id := binary.LittleEndian.Uint64(e.Data[1:])
	ms := int64(binary.LittleEndian.Uint64(e.Data[9:]))
	effects, err := udf.DecodeEffects(e.Data[effectsHeaderBytes:])
	if err != nil {
		return errors.Wrapf(err, "cluster: effects entry %d", e.Index)
	}
	if ms > r.lastNowMillis {
		r.lastNowMillis = ms
	}
	p := r.inflight[id]
	if p != nil {
		delete(r.inflight, id)
		if len(p.positions) != 1 || p.reply == nil {
			return errors.AssertionFailedf("cluster: effects entry %d matched a proposal of %d commands", e.Index, len(p.positions))
		}
		r.runUpTo(p.b, p.positions[0])
	}
	if err := udf.ApplyEffects(r.db, ms, effects); err != nil {
		return errors.Wrapf(err, "cluster: effects entry %d", e.Index)
	}
	r.changes += int64(len(effects))
	if p != nil {
		pos := p.positions[0]
		p.reply.Write(p.b.reqs[pos].W)
		p.b.state[pos] = stWriteDone
		p.b.next = pos + 1
	}
	return nil
}

func isEffectsEntry(data []byte) bool {
	return len(data) > 0 && data[0] == entryVersionEffects
}

// restoreFunctions installs a snapshot's registry (all or nothing).
func (r *Replica) restoreFunctions(dump []byte) error {
	h, err := r.fnHost()
	if err != nil {
		return err
	}
	if err := h.Restore(context.Background(), dump, udf.RestoreFlush); err != nil {
		return errors.Newf("snapshot function libraries: %s", udf.Message(err))
	}
	return nil
}

// resetFunctions empties the registry before a snapshot loads, so that a
// snapshot that fails half way leaves nothing behind.
func (r *Replica) resetFunctions() {
	if r.fn.host != nil {
		r.fn.host.Flush(context.Background())
	}
}

// functionsDump is the registry to store in a snapshot (nil when empty).
func (r *Replica) functionsDump() []byte {
	if r.fn.host == nil || len(r.fn.host.Libraries()) == 0 {
		return nil
	}
	return r.fn.host.Dump()
}
