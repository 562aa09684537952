package server

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/engine"
)

// MemoryPolicy is maxmemory-policy and the settings that go with it, as
// flags and the config file give them (node.Config's fields: Redis's
// default when 0, zero when negative).
type MemoryPolicy struct {
	Policy                                        engine.Policy
	Samples, Tenacity, LFULogFactor, LFUDecayTime int
}

// Set applies one directive by its redis.conf name, checked as Redis's
// CONFIG SET checks it.
func (m *MemoryPolicy) Set(name, value string) error {
	if name == "maxmemory-policy" {
		p, ok := engine.ParsePolicy(value)
		if !ok {
			return errors.Newf("must be one of %s", engine.PolicyNames)
		}
		m.Policy = p
		return nil
	}
	lo, hi := int64(0), int64(2147483647)
	switch name {
	case "maxmemory-samples":
		lo = 1
	case "maxmemory-eviction-tenacity":
		hi = 100
	case "lfu-log-factor", "lfu-decay-time":
	default:
		return errors.Newf("unknown memory setting %q", name)
	}
	x, err := strconv.ParseInt(value, 10, 64)
	if err != nil || x < lo || x > hi {
		return errors.Newf("must be between %d and %d inclusive", lo, hi)
	}
	v := int(x)
	if v == 0 {
		v = -1 // zero itself, not the default
	}
	switch name {
	case "maxmemory-samples":
		m.Samples = v
	case "maxmemory-eviction-tenacity":
		m.Tenacity = v
	case "lfu-log-factor":
		m.LFULogFactor = v
	case "lfu-decay-time":
		m.LFUDecayTime = v
	}
	return nil
}

// The Go runtime's soft memory limit follows maxmemory. maxmemory bounds
// what the data costs (used_memory_evict); what the process holds is that
// plus the heap's garbage, which the collector lets grow to the live heap
// again (GOGC=100) before it runs, and freed pages the runtime keeps. Under
// eviction that churn is steady: measured with allkeys-lru and a 20 MB
// limit, RSS reached 132 MB while the live heap was 25 MB. With a memory
// limit the collector runs as the process nears it and returns freed
// pages at once, so RSS stays near maxmemory plus what the empty server
// held. It is soft: if more is live than the limit (big client buffers),
// Go lets the heap grow rather than collect without end.
//
// The limit is the runtime's memory at start, plus maxmemory and a tenth
// of it (the data's own slack: half-full pages, the point index's growth).
// An operator's GOMEMLIMIT is left alone, and so is a process that holds
// more than this server (Config.OwnsProcess unset: tests).

// maxMemorySlackDiv: the limit allows maxmemory/maxMemorySlackDiv beyond it.
const maxMemorySlackDiv = 10

// runtimeMemory is everything the Go runtime has mapped: the heap, stacks
// and its own metadata.
func runtimeMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// memoryLimitFor is the runtime limit for maxmemory mm (0: none).
func memoryLimitFor(base, mm int64) int64 {
	if mm <= 0 {
		return math.MaxInt64
	}
	return base + mm + mm/maxMemorySlackDiv
}

// followMaxMemory sets the runtime's limit when maxmemory changed (start,
// CONFIG SET); it runs on every tick of one group.
func (s *Server) followMaxMemory() {
	if s.ownMemLimit {
		return
	}
	mm := s.node.MaxMemory()
	if s.limitFor.Swap(mm) == mm {
		return
	}
	debug.SetMemoryLimit(memoryLimitFor(s.baseMemory, mm))
}

// operatorMemLimit: GOMEMLIMIT is set, so the runtime's limit is the
// operator's.
func operatorMemLimit() bool { return os.Getenv("GOMEMLIMIT") != "" }
