package sim

import (
	"strings"
)

// FailureCheck names the check a failure message comes from: one of the
// Raft invariants, "reply" (the oracle's model of a reply), "recovery"
// (the oracle's prefix check of a recovered keyspace), "linearizability",
// "liveness", "convergence", "membership", "slots", "reshard", "pubsub",
// "ttl", "follower-read", "start" (a node that could not start), "panic",
// or the message's first word. Shrinking keeps a run failing the same
// check (keel sim shrink).
func FailureCheck(msg string) string {
	for _, inv := range []string{InvElectionSafety, InvLogMatching, InvLeaderCompleteness, InvStateMachine} {
		if strings.HasPrefix(msg, inv+":") {
			return inv
		}
	}
	prefixes := []struct{ prefix, check string }{
		{"linearizability:", "linearizability"},
		{"liveness:", "liveness"},
		{"convergence:", "convergence"},
		{"membership:", "membership"},
		{"slots:", "slots"},
		{"reshard:", "reshard"},
		{"pubsub:", "pubsub"},
		{"ttl:", "ttl"},
		{"follower read", "follower-read"},
		{"recovery at t=", "recovery"},
		{"t=", "reply"},
		{"panic", "panic"},
		{"node refused to start", "start"},
		{"node could not restart", "start"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(msg, p.prefix) {
			return p.check
		}
	}
	w, _, _ := strings.Cut(msg, " ")
	return strings.TrimSuffix(w, ":")
}
