// Package udf hosts user-defined functions written in WebAssembly: the
// module registry behind FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS,
// the `keel` host ABI that guests import, and the sandbox limits (memory
// cap, deterministic fuel) that make FCALL safe to run inside the replica's
// single executor.
//
// A call is a transaction that reads through a Store (declared here, where
// it is consumed; the replica implements it over the engine) and buffers
// its writes. It returns a Result: the reply tree and the effects, a list
// of engine commands (SET/DEL) that the replica logs as one entry and
// applies with engine.Exec. A call that traps, runs out of fuel or memory,
// or makes a host call fail returns an error and no effects, so nothing it
// wrote is ever seen. Recovery and followers replay the effects and never
// run guest code again. Each call starts from the state of a freshly
// instantiated module; for speed, each library keeps one warm instance
// and resets it to that state after a call (warm.go).
//
// Determinism: a guest sees time and randomness only through the Store,
// its fuel is counted by instructions inserted into the module at load
// (meter.go, priced in price.go), so the same call on the same state gives
// the same verdict on every replay. Nothing here reads a clock or the OS,
// starts a goroutine or lets map order reach an output. The exceptions
// are not ours and do not run in a simulation: wazero's context watcher
// when Config.WithCloseOnContextDone is on, and context.AfterFunc on a
// call's context when the runtime gives one that can end (interrupt.go:
// the stop runs on the goroutine that ends the context). A call stopped
// that way (a deadline, FUNCTION KILL through a Guard) is not a function
// of the log, and need not be: only the leader runs guests, and a stopped
// call logs nothing.
//
// See docs/functions.md for the ABI and the guest SDKs (udf/sdk for Go,
// udf/sdk/c/keel.h for C).
//
// May import: engine (for engine.Writer), seam, wazero, wabin.
package udf

// The example libraries (testdata/functions/*.c) are committed built;
// rebuild them after changing one or udf/sdk/c/keel.h (needs clang, lld).
//go:generate sh ../testdata/functions/build.sh
