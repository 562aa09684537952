package harness

import (
	"context"
	"flag"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// ParseFlags parses args with fs, refuses positional arguments, and
// returns the names of the flags given explicitly, so that a preset such
// as --quick changes only what the user did not set.
func ParseFlags(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, errors.Newf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set, nil
}

// SplitList splits a comma-separated flag value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// PositiveInts parses a comma-separated list of positive integers.
func PositiveInts(s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, errors.Newf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Common are the flags every harness takes: where its keel comes from,
// where its report goes, and its workspace's set-up.
type Common struct {
	KeelBin, OutDir string
	Install, Keep   bool
}

// Register adds --keel-bin, --out (defaulting to out), --install and
// --keep to fs.
func (c *Common) Register(fs *flag.FlagSet, out string) {
	fs.StringVar(&c.KeelBin, "keel-bin", "", "use this keel binary instead of building ./cmd/keel")
	fs.StringVar(&c.OutDir, "out", out, "directory for the report")
	fs.BoolVar(&c.Install, "install", true, "apt-get install redis-server redis-tools when missing")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory (server logs)")
}

// Start sets up the workspace (Setup) and the keel binary (KeelBinary).
// cleanup is safe to call whatever the error.
func (c Common) Start(ctx context.Context, tmpPrefix string) (ws Workspace, keelBin string, cleanup func(), err error) {
	ws, cleanup, err = Setup(c.Install, c.Keep, tmpPrefix)
	if err != nil {
		return ws, "", cleanup, err
	}
	keelBin, err = ws.KeelBinary(ctx, c.KeelBin)
	return ws, keelBin, cleanup, err
}
