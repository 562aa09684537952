package harness

import (
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
