// Command keel is the one binary: server, sim, check, function and bench.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
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
  backup     copy a running node's snapshot into a file (keel backup --node host:port --out FILE)
  restore    make a data directory from a backup (keel restore FILE --dir DIR)
  help       this text; keel help COMMAND (or keel COMMAND --help) for a command's flags

exit codes: 0 done (and help), 1 failed, 2 usage error (check: 1 not linearizable,
2 bad input, 3 unknown).
`

func main() {
	// go-redis logs dial failures through the standard logger before the
	// error reaches keel's own message: the commands that use it say
	// what failed themselves.
	redis.SetLogger(quietRedis{})
	os.Exit(mainCode(os.Args[1:]))
}

// mainCode runs keel with args: help (keel, keel help, -h, --help) exits
// 0; an unknown command is a usage error, 2.
func mainCode(args []string) int {
	if len(args) == 0 || args[0] != "help" && isHelp(args[0]) {
		fmt.Fprint(os.Stdout, usage)
		return 0
	}
	if args[0] == "help" {
		if len(args) == 1 {
			fmt.Fprint(os.Stdout, usage)
			return 0
		}
		if run, ok := subcommands[args[1]]; ok {
			return run(append(args[2:], "--help"))
		}
		args = args[1:]
	}
	run, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "keel: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return run(args[1:])
}

// isHelp: -h, --help, -help and help ask for the usage.
func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// wantsHelp reports whether any argument asks for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...interface{}) {}

// missingFlags names the required flags left empty (by their usage
// text), and stray arguments.
func missingFlags(required map[string]string, extra []string) string {
	var missing []string
	for name, v := range required {
		if v == "" {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	msg := ""
	if len(missing) > 0 {
		msg = "missing " + strings.Join(missing, " and ")
	}
	if len(extra) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += "unexpected arguments " + strings.Join(extra, " ")
	}
	return msg
}
