package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keel-db/keel/checker"
)

// Exit codes of `keel check`; scripts depend on them (docs/checker.md).
const (
	checkExitOk           = 0 // linearizable
	checkExitIllegal      = 1 // not linearizable
	checkExitBadInput     = 2 // unreadable history, bad flags, or an output that could not be written
	checkExitUndetermined = 3 // the time bound ran out: neither proven nor refuted
)

func init() {
	subcommands["check"] = func(args []string) int {
		return runCheck(args, os.Stdin, os.Stdout, os.Stderr)
	}
}

const checkUsage = `usage: keel check --model kv|bank|queue|set|zset --history FILE [--html OUT] [--timeout 10s]

Checks a JSON Lines history of client operations for linearizability
(format: docs/checker.md). FILE "-" reads standard input.

exit 0: linearizable; 1: not linearizable (the explanation names the key and
the operations that conflict); 2: input it cannot read (line number and
reason) or bad flags; 3: unknown, the search did not finish within --timeout.
`

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage) }
	model := fs.String("model", checker.ModelKV, "model: kv (per-key string commands), bank (transfers), queue (LPUSH, RPOP, BLPOP), set (SADD, SREM, SISMEMBER, SCARD, SPOP) or zset (ZADD, ZINCRBY, ZSCORE, ZRANK, ZPOPMIN)")
	historyPath := fs.String("history", "", "history file, JSON Lines; - for standard input")
	htmlPath := fs.String("html", "", "write porcupine's HTML visualization here")
	timeout := fs.Duration("timeout", checker.DefaultTimeout, "give up with verdict unknown (exit 3) after this long")
	if err := fs.Parse(args); err != nil {
		return checkExitBadInput
	}
	if *historyPath == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, checkUsage)
		return checkExitBadInput
	}
	switch *model {
	case checker.ModelKV, checker.ModelBank, checker.ModelQueue, checker.ModelSet, checker.ModelZSet:
	default:
		fmt.Fprintf(stderr, "keel check: unknown model %q (want kv, bank, queue, set or zset)\n", *model)
		return checkExitBadInput
	}

	in := stdin
	if *historyPath != "-" {
		f, err := os.Open(*historyPath)
		if err != nil {
			fmt.Fprintf(stderr, "keel check: %v\n", err)
			return checkExitBadInput
		}
		defer f.Close()
		in = f
	}
	ops, err := checker.ReadHistory(in)
	if err != nil {
		fmt.Fprintf(stderr, "keel check: %s: %v\n", *historyPath, err)
		return checkExitBadInput
	}
	res, err := checker.Check(ops, checker.Options{Model: *model, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(stderr, "keel check: %s: %v\n", *historyPath, err)
		return checkExitBadInput
	}

	if *htmlPath != "" {
		if err := writeHTML(*htmlPath, res); err != nil {
			fmt.Fprintf(stderr, "keel check: %v\n", err)
			return checkExitBadInput
		}
	}
	elapsed := res.Elapsed.Round(time.Millisecond)
	switch res.Verdict {
	case checker.Ok:
		fmt.Fprintf(stdout, "linearizable (%s, checked in %s)\n", res.Summary(), elapsed)
		return checkExitOk
	case checker.Illegal:
		fmt.Fprintf(stdout, "NOT linearizable (%s)\n%s\n", res.Summary(), res.Explanation)
		return checkExitIllegal
	default:
		fmt.Fprintf(stdout, "unknown (%s)\n%s\n", res.Summary(), res.Explanation)
		return checkExitUndetermined
	}
}

func writeHTML(path string, res checker.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.Visualize(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
