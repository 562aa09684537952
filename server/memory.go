package server

import (
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
