package sim

import (
	"hash/fnv"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/cluster"
)

// Raft's safety properties, checked across every replica of the world at
// every step (each Ready a replica persists, each entry it applies), not
// only by comparing states at the end. Every replica reports what its log,
// Raft state and state machine hold through cluster.Observer; the facts
// below are what any replica has shown so far, per replica group:
//
//   - election safety: at most one leader per term;
//   - log matching: an entry (index, term) has the same contents, and
//     follows an entry of the same term, in every log that holds it (by
//     induction, two logs holding it agree on everything before it);
//   - leader completeness: a replica that becomes leader holds every
//     entry committed so far, and no log ever replaces a committed entry;
//   - state-machine safety: every replica applies, at each index, the
//     entry committed there, each index once and in order, and never one
//     that is not committed yet.
//
// A single node whose promise allows losing acknowledged writes
// (appendfsync everysec or no, bit rot) may legitimately lose the tail of
// its log in a power loss; its facts above what it recovered are then
// forgotten (forgiveLoss). A replicated world keeps them: its scenarios
// cut power only under appendfsync always.

// Invariant names, as failure messages start ("raft election safety: ...").
const (
	InvElectionSafety     = "raft election safety"
	InvLogMatching        = "raft log matching"
	InvLeaderCompleteness = "raft leader completeness"
	InvStateMachine       = "raft state-machine safety"
)

// raftFailuresMax bounds the messages one invariant adds to a run's
// failures: the first says what broke.
const raftFailuresMax = 3

type raftCheck struct {
	r           *Run
	forgiveLoss bool
	groups      map[uint64]*groupFacts
	failed      map[string]int
	// Stats counts the facts checked.
	Stats RaftCheckStats
}

// RaftCheckStats counts what the Raft invariant checks looked at.
type RaftCheckStats struct {
	Entries, Commits, Applies, Elections int64
}

type entryKey struct{ index, term uint64 }

// entryFact is an entry as first seen in some log.
type entryFact struct {
	hash, prevTerm uint64
	node           uint64
}

// logFact is one entry of a replica's log.
type logFact struct{ term, hash uint64 }

// indexFact is what is known at one index: the entry committed (or
// applied) there and who showed it first (term 0: nothing known; Raft's
// terms start at 1).
type indexFact struct {
	term, hash uint64
	node       uint64
}

type groupFacts struct {
	leaders   map[uint64]uint64 // term → the node that led it
	entries   map[entryKey]entryFact
	committed []indexFact // by index (0: none known)
	applied   []indexFact
	replicas  map[uint64]*replicaView
}

// replicaView is one replica's log and state as it last reported them.
type replicaView struct {
	node                uint64
	snapIndex, snapTerm uint64
	log                 []logFact // from snapIndex+1
	applied, commit     uint64
	leader              bool
}

func (v *replicaView) lastIndex() uint64 { return v.snapIndex + uint64(len(v.log)) }

// term is the view's term at index i (ok false: not in the log).
func (v *replicaView) term(i uint64) (uint64, bool) {
	switch {
	case i == v.snapIndex:
		return v.snapTerm, true
	case i < v.snapIndex || i > v.lastIndex():
		return 0, false
	}
	return v.log[i-v.snapIndex-1].term, true
}

func newRaftCheck(r *Run, forgiveLoss bool) *raftCheck {
	return &raftCheck{r: r, forgiveLoss: forgiveLoss, groups: map[uint64]*groupFacts{}, failed: map[string]int{}}
}

// observer is the cluster.Observer of node's replica of group g.
func (c *raftCheck) observer(node, g uint64) cluster.Observer {
	f := c.groups[g]
	if f == nil {
		f = &groupFacts{leaders: map[uint64]uint64{}, entries: map[entryKey]entryFact{}, replicas: map[uint64]*replicaView{}}
		c.groups[g] = f
	}
	v := f.replicas[node]
	if v == nil {
		v = &replicaView{node: node}
		f.replicas[node] = v
	}
	return &replicaObserver{c: c, f: f, v: v, g: g}
}

func (c *raftCheck) fail(inv, msg string) {
	c.failed[inv]++
	if c.failed[inv] > raftFailuresMax {
		c.r.Oracle.FailuresTotal++
		return
	}
	c.r.Oracle.fail(inv + ": t=" + time.Duration(c.r.W.now).String() + " " + msg)
}

func entryHash(e *pb.Entry) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(e.Type)})
	h.Write(e.Data)
	return h.Sum64()
}

// otherEntry names the entry another replica had at an index: of another
// term, or of the same term with other contents.
func otherEntry(term, mine uint64) string {
	if term == mine {
		return "one of the same term with other contents"
	}
	return "one of term " + itoa(int64(term))
}

func fact(facts []indexFact, i uint64) indexFact {
	if i < uint64(len(facts)) {
		return facts[i]
	}
	return indexFact{}
}

func setFact(facts *[]indexFact, i uint64, f indexFact) {
	for uint64(len(*facts)) <= i {
		*facts = append(*facts, indexFact{})
	}
	(*facts)[i] = f
}

type replicaObserver struct {
	c *raftCheck
	f *groupFacts
	v *replicaView
	g uint64
}

var _ cluster.Observer = (*replicaObserver)(nil)

func (o *replicaObserver) who() string {
	s := "n" + itoa(int64(o.v.node))
	if len(o.c.groups) > 1 || o.g > 1 {
		s += " g" + itoa(int64(o.g))
	}
	return s
}

func (o *replicaObserver) LogLoaded(snapIndex, snapTerm uint64, ents []pb.Entry) {
	v := o.v
	last := snapIndex + uint64(len(ents))
	if o.c.forgiveLoss {
		o.forget(last)
	}
	v.snapIndex, v.snapTerm = snapIndex, snapTerm
	v.log = v.log[:0]
	v.applied, v.commit, v.leader = snapIndex, snapIndex, false
	if snapIndex > 0 {
		if cf := fact(o.f.committed, snapIndex); cf.term != 0 && cf.term != snapTerm {
			o.c.fail(InvStateMachine, o.who()+" holds a snapshot at index "+itoa(int64(snapIndex))+" of term "+itoa(int64(snapTerm))+
				", but n"+itoa(int64(cf.node))+" committed an entry of term "+itoa(int64(cf.term))+" there")
		}
	}
	o.appendEntries(snapTerm, ents, false)
}

// forget drops what is known above index last: a single node that lost
// its log's tail in a crash its promise allows (forgiveLoss).
func (o *replicaObserver) forget(last uint64) {
	f := o.f
	if uint64(len(f.committed)) > last+1 {
		f.committed = f.committed[:last+1]
	}
	if uint64(len(f.applied)) > last+1 {
		f.applied = f.applied[:last+1]
	}
	for k := range f.entries {
		if k.index > last {
			delete(f.entries, k)
		}
	}
}

func (o *replicaObserver) LogAppended(prevTerm uint64, ents []pb.Entry) {
	if len(ents) == 0 {
		return
	}
	v := o.v
	first := ents[0].Index
	if first <= v.snapIndex {
		return // the store never reports these
	}
	if first-1 <= v.lastIndex() {
		v.log = v.log[:first-1-v.snapIndex]
	}
	o.appendEntries(prevTerm, ents, true)
}

// appendEntries checks ents (following an entry of term prevTerm) against
// every log seen so far and adds them to the view. fresh: they were
// appended just now (not loaded from disk, where a stale suffix that a
// leader has yet to replace is legitimate), so at a committed index an
// entry of the committed entry's term or a later one must be the
// committed entry: a leader of a later term holds it (leader
// completeness).
func (o *replicaObserver) appendEntries(prevTerm uint64, ents []pb.Entry, fresh bool) {
	v, f := o.v, o.f
	prev := prevTerm
	hashes := make([]uint64, len(ents))
	for i := range ents {
		e := &ents[i]
		h := entryHash(e)
		hashes[i] = h
		o.c.Stats.Entries++
		k := entryKey{e.Index, e.Term}
		if old, ok := f.entries[k]; ok {
			switch {
			case old.hash != h:
				o.c.fail(InvLogMatching, o.who()+" holds entry "+itoa(int64(e.Index))+" of term "+itoa(int64(e.Term))+
					" with other contents than n"+itoa(int64(old.node))+"'s")
			case old.prevTerm != prev:
				o.c.fail(InvLogMatching, o.who()+"'s entry "+itoa(int64(e.Index))+" of term "+itoa(int64(e.Term))+
					" follows an entry of term "+itoa(int64(prev))+", n"+itoa(int64(old.node))+"'s one of term "+itoa(int64(old.prevTerm)))
			}
		} else {
			f.entries[k] = entryFact{hash: h, prevTerm: prev, node: v.node}
		}
		prev = e.Term
	}
	for i := range ents {
		e := &ents[i]
		// An entry of an older term than the committed one is a deposed
		// leader's own proposal, which can never commit: legitimate.
		if cf := fact(f.committed, e.Index); fresh && cf.term != 0 && (e.Term > cf.term || e.Term == cf.term && cf.hash != hashes[i]) {
			o.c.fail(InvLeaderCompleteness, o.who()+" appended an entry of term "+itoa(int64(e.Term))+" at index "+itoa(int64(e.Index))+
				", where n"+itoa(int64(cf.node))+" committed one of term "+itoa(int64(cf.term))+" (a leader without a committed entry sent it, or the log lost it)")
		}
		if e.Index == v.lastIndex()+1 {
			v.log = append(v.log, logFact{term: e.Term, hash: hashes[i]})
		}
	}
}

func (o *replicaObserver) Ready(hs pb.HardState, leader bool) {
	v, f := o.v, o.f
	if leader {
		if l, ok := f.leaders[hs.Term]; !ok {
			f.leaders[hs.Term] = v.node
		} else if l != v.node {
			o.c.fail(InvElectionSafety, "term "+itoa(int64(hs.Term))+" has two leaders: n"+itoa(int64(l))+" and "+o.who())
		}
	}
	for i := v.commit + 1; i <= hs.Commit && i <= v.lastIndex(); i++ {
		if i <= v.snapIndex {
			continue
		}
		lf := v.log[i-v.snapIndex-1]
		o.c.Stats.Commits++
		if cf := fact(f.committed, i); cf.term == 0 {
			setFact(&f.committed, i, indexFact{term: lf.term, hash: lf.hash, node: v.node})
		} else if cf.term != lf.term || cf.hash != lf.hash {
			o.c.fail(InvStateMachine, o.who()+" committed an entry of term "+itoa(int64(lf.term))+" at index "+itoa(int64(i))+
				", n"+itoa(int64(cf.node))+" "+otherEntry(cf.term, lf.term))
		}
	}
	v.commit = max(v.commit, min(hs.Commit, v.lastIndex()))
	if leader && !v.leader {
		o.c.Stats.Elections++
		if a := o.c.r.aims; a != nil {
			a.newLeader(o.c.r)
		}
		o.checkComplete(hs.Term)
	}
	v.leader = leader
}

// checkComplete: a replica that just became leader holds every entry
// committed so far (those below its snapshot are in the snapshot).
func (o *replicaObserver) checkComplete(term uint64) {
	v, f := o.v, o.f
	for i := v.snapIndex + 1; i < uint64(len(f.committed)); i++ {
		cf := f.committed[i]
		if cf.term == 0 {
			continue
		}
		t, ok := v.term(i)
		if !ok || t != cf.term || v.log[i-v.snapIndex-1].hash != cf.hash {
			have := "ends at index " + itoa(int64(v.lastIndex()))
			if ok {
				have = "holds one of term " + itoa(int64(t)) + " there"
			}
			o.c.fail(InvLeaderCompleteness, o.who()+" became leader of term "+itoa(int64(term))+" without the entry n"+itoa(int64(cf.node))+
				" committed at index "+itoa(int64(i))+" (term "+itoa(int64(cf.term))+"): its log "+have)
			return
		}
	}
}

func (o *replicaObserver) Applied(e pb.Entry) {
	v, f := o.v, o.f
	o.c.Stats.Applies++
	if e.Index != v.applied+1 {
		o.c.fail(InvStateMachine, o.who()+" applied entry "+itoa(int64(e.Index))+" right after entry "+itoa(int64(v.applied))+
			" (each index once, in order)")
	}
	if e.Index > v.commit {
		o.c.fail(InvStateMachine, o.who()+" applied entry "+itoa(int64(e.Index))+" before it was committed (commit index "+itoa(int64(v.commit))+")")
	}
	h := entryHash(&e)
	if af := fact(f.applied, e.Index); af.term == 0 {
		setFact(&f.applied, e.Index, indexFact{term: e.Term, hash: h, node: v.node})
	} else if af.term != e.Term || af.hash != h {
		o.c.fail(InvStateMachine, o.who()+" applied an entry of term "+itoa(int64(e.Term))+" at index "+itoa(int64(e.Index))+
			", n"+itoa(int64(af.node))+" applied "+otherEntry(af.term, e.Term)+" there")
	}
	if e.Index > v.applied {
		v.applied = e.Index
	}
}
