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

// FailureSignature is FailureCheck, narrowed for the oracle's reply
// check to the command and the kind of reply it got ("reply INCRBY got
// integer", "reply GET got nil"): shrinking keeps a run failing the same
// signature, so that leaving out a library load (every FCALL then gets
// an error) does not pass for the wrong balance the seed showed.
func FailureSignature(msg string) string {
	check := FailureCheck(msg)
	if check != "reply" {
		return check
	}
	_, rest, _ := strings.Cut(msg, " ") // after "t=<time>"
	cmd, _, _ := strings.Cut(rest, " ")
	sig := "reply " + strings.ToUpper(strings.TrimSuffix(cmd, ":"))
	_, got, ok := strings.Cut(rest, ", got ")
	if !ok {
		return sig
	}
	switch {
	case strings.HasPrefix(got, "(integer)"):
		return sig + " got integer"
	case strings.HasPrefix(got, "(error)"):
		return sig + " got error"
	case strings.HasPrefix(got, "(nil)"):
		return sig + " got nil"
	case strings.HasPrefix(got, "\""):
		return sig + " got string"
	}
	return sig + " got other"
}
