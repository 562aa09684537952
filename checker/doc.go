// Package checker decides whether what clients saw was linearizable, and
// writes the report a person opens when a simulation seed fails.
//
// A history is a slice of Op: one per client operation, with its call and
// return time on one clock (nanoseconds) and its output. An operation whose
// outcome the client never learned (timeout, connection lost, node crashed
// mid-call) is kept with Unknown set: it may have taken effect at any point
// after its call, or not at all. Histories are stored as JSON Lines
// (ReadHistory, WriteHistory; the format is spelled out in docs/checker.md).
//
// Two models, both porcupine models (github.com/anishathalye/porcupine):
//   - "kv": single-key Redis string commands (SET with NX/XX/GET, GET, DEL,
//     INCRBY, GETDEL, and MGET split into one read per key), partitioned by
//     key, so each key is checked on its own.
//   - "bank": the bank-transfer workload. TRANSFER moves an amount between
//     two accounts atomically (one EXEC), MGET reads all balances as one
//     snapshot; the whole account map is one state. CheckTotal is the cheap
//     independent invariant: every snapshot read sums to the same total.
//
// Use from the simulator, at the end of each seed:
//
//	checker.DeadlinesFromNextOp(ops) // if each client is one in-order connection
//	res, err := checker.Check(ops, checker.Options{Model: checker.ModelKV})
//	if err != nil { ... a malformed history is a simulator bug ... }
//	if !res.Passed() { // Illegal, or Unknown (the time bound ran out)
//		err := checker.WriteReport(dir, checker.Report{
//			Scenario: "crash-restart", Seed: 42, Result: res, Ops: ops,
//			TraceFile: tracePath, // or Trace: lines
//			Replay: "keel sim replay --scenario crash-restart --seed 42",
//		})
//	}
//
// WriteReport writes summary.txt (verdict, explanation and replay command
// first), history.jsonl, visualization.html (porcupine's) and trace.txt.
// A seed that fails for a reason of its own (a recovered value that was never
// acknowledged, a panic) passes it in Report.Failure and still gets a folder.
//
// Checking is bounded: Options.Timeout (DefaultTimeout when zero) turns a
// search that runs too long into the verdict Unknown, which CI treats as a
// failure. The search (search.go) is porcupine's algorithm with rules for
// unknown outcomes added; porcupine itself draws the visualization and
// cross-checks the search in tests. Check runs on the caller's goroutine but
// reads the wall clock for its bound, and Result.Visualize runs porcupine
// (goroutines, timers): call both after a simulation, never inside one.
//
// May import: nothing of keel.
package checker
