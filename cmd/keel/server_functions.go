package main

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/tetratelabs/wazero"

	"github.com/keel-db/keel/udf"
)

// functionOptions are the WASM function host's directives
// (docs/functions.md, "Sandbox and limits"):
//
//	function-memory-limit 16mb    linear memory per call (64 KiB pages; 64kb to 4gb)
//	function-fuel 50000000        instructions per call
//
// Every replica of a group must use the same values: they decide whether
// a call succeeds.
type functionOptions struct {
	memoryPages uint32 // 0: default
	fuel        int64  // 0: default
}

const wasmPageBytes = 64 << 10

// set applies one directive; handled is false when name is not one.
func (f *functionOptions) set(name, value string) (handled bool, err error) {
	switch strings.ToLower(name) {
	case "function-memory-limit":
		n, err := parseMemory(value)
		if err != nil {
			return true, err
		}
		if n < wasmPageBytes || n > 65536*wasmPageBytes {
			return true, errors.Newf("bad value %q for function-memory-limit: must be 64kb to 4gb", value)
		}
		f.memoryPages = uint32(n / wasmPageBytes)
		return true, nil
	case "function-fuel":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 {
			return true, errors.Newf("bad value %q for function-fuel: must be a positive integer", value)
		}
		f.fuel = n
		return true, nil
	}
	return false, nil
}

// config is the host configuration for the replica. With a data directory
// on disk, compiled libraries are cached in <dir>/wasm-cache so a restart
// does not compile every library again (the cache is keyed by the metered
// module, so it is safe to share across fuel settings and versions).
func (f functionOptions) config(dir string, onDisk bool) *udf.Config {
	cfg := udf.NewConfig()
	if f.memoryPages > 0 {
		cfg = cfg.WithMemoryLimitPages(f.memoryPages)
	}
	if f.fuel > 0 {
		cfg = cfg.WithFuel(f.fuel)
	}
	if onDisk {
		if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "wasm-cache")); err == nil {
			cfg = cfg.WithCompilationCache(cache)
		}
	}
	return &cfg
}
