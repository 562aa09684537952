package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/keel-db/keel/udf"
	"github.com/redis/go-redis/v9"
)

func init() { subcommands["function"] = runFunction }

const functionUsage = `usage: keel function <command> [flags]

commands:
  load --name LIB FILE.wasm [--replace]   load (or replace) a WASM library; prints its name
  list                                    list libraries and their functions
  delete LIB                              delete a library

flags (every command):
  --host 127.0.0.1  --port 6379  --password P

See docs/functions.md for writing functions.
`

// functionTimeout bounds one command to the server: a load compiles the
// module there, which is quick, but a dead server must not hang a script.
const functionTimeout = 30 * time.Second

func runFunction(args []string) int {
	return functionMain(args, os.Stdout, os.Stderr)
}

func functionMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, functionUsage)
		return 2
	}
	if isHelp(args[0]) || wantsHelp(args) {
		fmt.Fprint(stdout, functionUsage)
		return 0
	}
	cmd := args[0]
	fs := flag.NewFlagSet("keel function "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "server address")
	port := fs.Int("port", 6379, "server port")
	password := fs.String("password", "", "requirepass of the server")
	name := fs.String("name", "", "library name (load)")
	replace := fs.Bool("replace", false, "replace a library of the same name (load)")
	// Flags may come before or after the positional arguments.
	var positional []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), functionTimeout)
	defer cancel()
	client := func() *redis.Client {
		return redis.NewClient(&redis.Options{
			Addr:            *host + ":" + strconv.Itoa(*port),
			Password:        *password,
			Protocol:        2,
			DisableIdentity: true,
			MaxRetries:      -1,
		})
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "keel function "+cmd+": "+err.Error())
		return 1
	}
	switch cmd {
	case "load":
		if *name == "" || len(positional) != 1 {
			missing := "missing --name LIB"
			switch {
			case *name != "" && len(positional) == 0:
				missing = "missing FILE.wasm"
			case *name != "":
				missing = "one FILE.wasm, not " + strconv.Itoa(len(positional))
			}
			fmt.Fprint(stderr, "keel function load: "+missing+"\nusage: keel function load --name LIB FILE.wasm [--replace]\n")
			return 2
		}
		code, err := os.ReadFile(positional[0])
		if err != nil {
			return fail(err)
		}
		payload := string(udf.FormatPayload(*name, code))
		if _, _, err := udf.ParsePayload([]byte(payload)); err != nil {
			return fail(err) // a bad name: say so without a round trip
		}
		c := client()
		defer c.Close()
		var res *redis.StringCmd
		if *replace {
			res = c.FunctionLoadReplace(ctx, payload)
		} else {
			res = c.FunctionLoad(ctx, payload)
		}
		if err := res.Err(); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, res.Val())
		return 0
	case "list":
		if len(positional) != 0 {
			fmt.Fprint(stderr, "usage: keel function list\n")
			return 2
		}
		c := client()
		defer c.Close()
		libs, err := c.FunctionList(ctx, redis.FunctionListQuery{}).Result()
		if err != nil {
			return fail(err)
		}
		for _, l := range libs {
			fmt.Fprintf(stdout, "%s (%s)\n", l.Name, l.Engine)
			for _, f := range l.Functions {
				fmt.Fprintf(stdout, "  %s\n", f.Name)
			}
		}
		return 0
	case "delete":
		if len(positional) != 1 {
			fmt.Fprint(stderr, "keel function delete: missing LIB\nusage: keel function delete LIB\n")
			return 2
		}
		c := client()
		defer c.Close()
		if err := c.FunctionDelete(ctx, positional[0]).Err(); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "OK")
		return 0
	default:
		fmt.Fprintf(stderr, "keel function: unknown command %q\n\n%s", cmd, functionUsage)
		return 2
	}
}
