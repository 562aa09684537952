// Package scenarios names keel's simulation scenarios (a workload plus a
// fault schedule over sim's world), runs seeds of them, and judges each
// seed: the oracle's invariants (every reply consistent with the
// sequential model, every recovery a permitted prefix) and, where no
// acknowledged write may be lost, porcupine linearizability of the
// clients' history (checker).
//
// May import: sim, checker, cluster (for its policy names and testing
// knobs), node (for its testing knobs), engine (for the eviction
// policies a scenario picks by seed).
package scenarios
