package main

import (
	"fmt"
	"strings"
)

// serverFlag documents one directive of keel server: a flag (--name
// value) and a config file line (name value) alike.
type serverFlag struct {
	name, value, def, help string
}

// serverFlags are every directive keel server takes, by topic; a test
// checks that each one is accepted and that set knows no other.
var serverFlags = []struct {
	topic string
	flags []serverFlag
}{
	{"network", []serverFlag{
		{"bind", "ADDR", "127.0.0.1", "address to listen on"},
		{"port", "N", "6379", "client port (cluster bus: port+10000)"},
		{"timeout", "SECONDS", "0", "close a client idle that long (0: never)"},
		{"maxclients", "N", "10000", "most clients at once"},
		{"event-loops", "N|auto", "auto", "event loops serving clients (0: a goroutine per client)"},
		{"tls-port", "N", "0", "TLS client port (0: none)"},
		{"tls-cert-file", "FILE", "", "certificate for TLS"},
		{"tls-key-file", "FILE", "", "key for TLS"},
		{"tls-ca-cert-file", "FILE", "", "CA that signs clients and peers"},
		{"tls-auth-clients", "yes|no|optional", "yes", "require client certificates"},
	}},
	{"persistence", []serverFlag{
		{"dir", "DIR", "./keel-data", "data directory"},
		{"appendonly", "yes|no", "yes", "keep a write-ahead log and snapshots"},
		{"appendfsync", "everysec|always|no", "everysec", "when the log is fsynced (CONFIG SET too)"},
		{"aof-load-truncated", "yes|no", "yes", "cut a torn log tail at recovery instead of refusing to start"},
	}},
	{"security", []serverFlag{
		{"requirepass", "PASS", "", "the default user's password"},
		{"aclfile", "FILE", "", "ACL users file"},
		{"user", "RULES", "", "an ACL user, as redis.conf's user lines (repeatable)"},
	}},
	{"limits", []serverFlag{
		{"maxmemory", "BYTES", "0", "memory limit (0: none; CONFIG SET too)"},
		{"maxmemory-policy", "POLICY", "noeviction", "what goes over maxmemory: Redis's eight policies"},
		{"maxmemory-samples", "N", "5", "keys sampled per eviction"},
		{"maxmemory-eviction-tenacity", "0..100", "10", "how hard one eviction pass tries"},
		{"lfu-log-factor", "N", "10", "LFU counter's logarithm factor"},
		{"lfu-decay-time", "MINUTES", "1", "LFU counter's decay"},
		{"client-output-buffer-limit", "CLASS HARD SOFT SECONDS", "pubsub 32mb 8mb 60", "output buffer limits"},
		{"client-query-buffer-limit", "BYTES", "1gb", "largest query buffer of a client"},
		{"proto-max-bulk-len", "BYTES", "512mb", "largest bulk string"},
		{"notify-keyspace-events", "FLAGS", "", "keyspace notifications (Redis's letters)"},
	}},
	{"functions", []serverFlag{
		{"busy-reply-threshold", "MS", "5000", "a function call running longer makes others answer BUSY"},
		{"function-time-limit", "MS", "1000", "stop a function call after this long (-1: never)"},
		{"function-memory-limit", "BYTES", "", "memory of a function's WASM instance"},
		{"function-fuel", "N", "", "fuel (work) a function call may burn"},
	}},
	{"cluster", []serverFlag{
		{"node-id", "N", "", "this node's id among --peers"},
		{"peers", "ID@HOST:PORT,...", "", "every founding node, this one included (cluster mode)"},
		{"groups", "N", "1", "replica groups the slots are sharded over"},
		{"groups-max", "N", "--groups", "placed cluster: groups splits may grow it to (keel cluster split)"},
		{"replicas", "N", "0", "nodes each group is placed on (0: every node)"},
		{"join", "yes|no", "no", "wait to be added with CLUSTER ADDNODE"},
		{"node-dead-after", "DURATION", "5m", "placed cluster: re-create the replicas of a node unheard this long"},
		{"cluster-enabled", "yes|no", "", "stated cluster mode (implied by --peers)"},
		{"tls-cluster", "yes|no", "no", "mutual TLS on the cluster bus"},
		{"cluster-insecure", "yes|no", "no", "run the cluster bus in plaintext"},
	}},
	{"operations", []serverFlag{
		{"loglevel", "debug|verbose|notice|warning", "notice", "log level (CONFIG SET too)"},
		{"logfile", "FILE", "", "append the log to FILE (default: stderr)"},
		{"metrics-addr", "HOST:PORT", "", "serve Prometheus metrics at http://HOST:PORT/metrics (off by default)"},
		{"slowlog-log-slower-than", "MICROS", "10000", "log commands slower than this in SLOWLOG (-1: off)"},
		{"slowlog-max-len", "N", "128", "SLOWLOG entries kept"},
		{"latency-monitor-threshold", "MS", "0", "sample events slower than this for LATENCY (0: off)"},
		{"latency-tracking", "yes|no", "yes", "per-command latency histograms (INFO latencystats)"},
		{"latency-tracking-info-percentiles", "\"P ...\"", "\"50 99 99.9\"", "percentiles INFO latencystats shows"},
		{"acllog-max-len", "N", "128", "ACL LOG entries kept"},
		{"pprof-addr", "HOST:PORT", "", "serve Go's pprof (off by default)"},
		{"config", "FILE", "", "config file (also the first argument)"},
	}},
}

func serverUsage() string {
	var b strings.Builder
	b.WriteString(`usage: keel server [config-file] [--name value ...]

Flags and config file lines ("name value", # comments) use redis.conf names;
flags override the file. docs/operations.md describes running keel.
`)
	for _, t := range serverFlags {
		fmt.Fprintf(&b, "\n%s:\n", t.topic)
		for _, f := range t.flags {
			left := "  --" + f.name + " " + f.value
			def := ""
			if f.def != "" {
				def = " (default " + f.def + ")"
			}
			fmt.Fprintf(&b, "%-44s %s%s\n", left, f.help, def)
		}
	}
	return b.String()
}
