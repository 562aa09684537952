// Command keel is the one binary: server, sim, check, function and bench.
package main

import (
	"fmt"
	"os"
)

// subcommands maps a name to its entry point; each lives in its own file
// (server.go, sim.go, check.go, function.go) and returns the exit code.
var subcommands = map[string]func(args []string) int{}

const usage = `usage: keel <command> [flags]

commands:
  server     run a keel server (Redis protocol)
  sim        run or replay deterministic simulations
  check      check a history for linearizability
  function   manage WASM functions on a running server
  cluster    run a local cluster of keel servers (keel cluster local --nodes 3)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	run, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "keel: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	os.Exit(run(os.Args[2:]))
}
