package server

import (
	"os"
	goruntime "runtime"
	"runtime/metrics"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
)

// runtime is the server's node.Runtime: the node's decisions carried out
// with goroutines, sockets and the OS.
type nodeRuntime struct{ s *Server }

var _ node.Runtime = nodeRuntime{}

func (rt nodeRuntime) Exclusive(sess *node.Session, g uint64, fn func()) {
	s := rt.s
	if sess != nil {
		if c, ok := sess.Conn().(*conn); ok {
			s.groups[g-1].queue.do(c.waiterFor(g), fn)
			return
		}
	}
	s.do(g, fn)
}

func (rt nodeRuntime) Send(to uint64, msg []byte) {
	if tr := rt.s.tr.Load(); tr != nil {
		tr.Send(to, msg)
	}
}

func (rt nodeRuntime) Wake(sess *node.Session) {
	if c, ok := sess.Conn().(*conn); ok {
		c.wakeWriter()
	}
}

func (rt nodeRuntime) Unpark(sess *node.Session) {
	if c, ok := sess.Conn().(*conn); ok {
		c.unpark()
	}
}

func (rt nodeRuntime) Disconnect(sess *node.Session) {
	if c, ok := sess.Conn().(*conn); ok {
		c.kill()
	}
}

func (rt nodeRuntime) StartJob(g uint64, r *cluster.Replica, job *cluster.Job) {
	rt.s.startJob(g, r, job)
}

func (rt nodeRuntime) WaitJob(g uint64) { rt.s.groups[g-1].waitJobRun() }

func (rt nodeRuntime) StartSync(g uint64, r *cluster.Replica, sj *cluster.SyncJob) {
	rt.s.startSync(g, r, sj)
}

func (rt nodeRuntime) Shutdown() { rt.s.Shutdown() }

// OpenGroup opens the node's replica of group g in the group's queue, on
// a goroutine of its own: the node asks from inside some group's turn.
func (rt nodeRuntime) OpenGroup(g uint64) {
	s := rt.s
	go s.do(g, func() {
		if err := s.node.OpenGroup(g, s.replicaOptions(g)); err != nil {
			s.cfg.Logf("group %d: opening the replica placed here: %v", g, err)
		}
	})
}

// DropGroup closes and deletes the node's replica of group g in the
// group's queue.
func (rt nodeRuntime) DropGroup(g uint64) {
	s := rt.s
	go s.do(g, func() {
		if err := s.node.DropGroup(g, s.clock.Now()); err != nil {
			s.cfg.Logf("group %d: dropping the replica placed elsewhere: %v", g, err)
		}
	})
}

func (rt nodeRuntime) Logf(format string, args ...any) { rt.s.cfg.Logf(format, args...) }

func (rt nodeRuntime) Host() node.HostInfo {
	s := rt.s
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	if ms.HeapAlloc > s.peakAlloc.Load() {
		s.peakAlloc.Store(ms.HeapAlloc)
	}
	_, live := readHeap()
	exe, _ := os.Executable()
	user, sys := cpuTimes()
	return node.HostInfo{
		ProcessID: os.Getpid(), Executable: exe, MultiplexAPI: "go netpoll",
		OS: goruntime.GOOS + " " + goruntime.GOARCH, GoVersion: goruntime.Version(),
		StartedNanos: s.started.UnixNano(),
		HeapAlloc:    ms.HeapAlloc, HeapLive: live, HeapPeak: s.peakAlloc.Load(), HeapSys: ms.HeapSys,
		NumGC: uint64(ms.NumGC), GCPauseTotalNs: ms.PauseTotalNs,
		RSS: rssBytes(), SystemMemory: totalSystemMemory(),
		CPUUser: user.Seconds(), CPUSys: sys.Seconds(),
	}
}

// heapSamples are the runtime/metrics the ticker reads once a second for
// used_memory_peak. runtime.ReadMemStats would stop the world for it (it
// showed in the scheduler-latency trace of the 10M-key GET latency runs,
// docs/performance.md); reading metrics does not.
var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"}, // HeapAlloc: live and not yet swept
	{Name: "/gc/heap/live:bytes"},                // live as of the last GC's mark
}

// readHeap is HeapAlloc and the heap the last GC found live, without
// stopping the world.
func readHeap() (alloc, live uint64) {
	samples := make([]metrics.Sample, len(heapSamples))
	copy(samples, heapSamples)
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		alloc = samples[0].Value.Uint64()
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		live = samples[1].Value.Uint64()
	}
	return alloc, live
}

// notePeakMemory samples the heap for used_memory_peak, once a second.
func (s *Server) notePeakMemory() {
	alloc, _ := readHeap()
	if alloc > s.peakAlloc.Load() {
		s.peakAlloc.Store(alloc)
	}
}
