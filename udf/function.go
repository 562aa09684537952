package udf

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/keel-db/keel/engine"
)

// This file is the FUNCTION and FCALL command surface, so that the replica
// only routes: it logs the write subcommands (IsFunctionWrite) as they are
// and applies them by calling Function; FCALL goes through ParseFCall and
// Call.

// IsFunctionWrite reports whether a FUNCTION command changes the registry
// (LOAD, DELETE, FLUSH, RESTORE): those are logged and replicated, so every
// replica and every recovery loads the same libraries in the same order.
func IsFunctionWrite(argv [][]byte) bool {
	if len(argv) < 2 {
		return false
	}
	switch strings.ToLower(string(argv[1])) {
	case "load", "delete", "flush", "restore":
		return true
	}
	return false
}

// Function runs one FUNCTION command (argv[0] is "FUNCTION") and writes
// exactly one reply to w.
func (h *Host) Function(ctx context.Context, argv [][]byte, w engine.Writer) {
	if len(argv) < 2 {
		w.WriteError("ERR wrong number of arguments for 'function' command")
		return
	}
	sub := strings.ToLower(string(argv[1]))
	args := argv[2:]
	arity := func(ok bool) bool {
		if !ok {
			w.WriteError("ERR wrong number of arguments for 'function|" + sub + "' command")
		}
		return ok
	}
	switch sub {
	case "load":
		if !arity(len(args) == 1 || len(args) == 2) {
			return
		}
		replace := false
		if len(args) == 2 {
			if !strings.EqualFold(string(args[0]), "replace") {
				w.WriteError("ERR Unknown option given: " + string(args[0]))
				return
			}
			replace = true
		}
		name, code, err := ParsePayload(args[len(args)-1])
		if err == nil {
			_, err = h.Load(ctx, name, code, replace)
		}
		if err != nil {
			w.WriteError(Message(err))
			return
		}
		w.WriteBulkString(name)
	case "delete":
		if !arity(len(args) == 1) {
			return
		}
		if err := h.Delete(ctx, string(args[0])); err != nil {
			w.WriteError(Message(err))
			return
		}
		w.WriteSimple("OK")
	case "flush":
		if !arity(len(args) <= 1) {
			return
		}
		if len(args) == 1 && !strings.EqualFold(string(args[0]), "sync") && !strings.EqualFold(string(args[0]), "async") {
			w.WriteError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
			return
		}
		h.Flush(ctx)
		w.WriteSimple("OK")
	case "list":
		h.list(args, w)
	case "dump":
		if !arity(len(args) == 0) {
			return
		}
		w.WriteBulk(h.Dump())
	case "restore":
		if !arity(len(args) == 1 || len(args) == 2) {
			return
		}
		policy := RestoreAppend
		if len(args) == 2 {
			switch strings.ToLower(string(args[1])) {
			case "append":
			case "replace":
				policy = RestoreReplace
			case "flush":
				policy = RestoreFlush
			default:
				w.WriteError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
				return
			}
		}
		if err := h.Restore(ctx, args[0], policy); err != nil {
			w.WriteError(Message(err))
			return
		}
		w.WriteSimple("OK")
	case "stats":
		if !arity(len(args) == 0) {
			return
		}
		s := h.Stats()
		w.WriteMap(2)
		w.WriteBulkString("running_script")
		w.WriteNull() // calls run to completion inside the executor
		w.WriteBulkString("engines")
		w.WriteMap(1)
		w.WriteBulkString("WASM")
		w.WriteMap(2)
		w.WriteBulkString("libraries_count")
		w.WriteInt(int64(s.Libraries))
		w.WriteBulkString("functions_count")
		w.WriteInt(int64(s.Functions))
	case "kill":
		// Only reached on the executor, where no call can be running:
		// the runtime answers FUNCTION KILL itself, through a Guard.
		w.WriteError(NotBusyMessage)
	case "help":
		lines := []string{
			"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"LOAD [REPLACE] <payload>: payload is \"#!wasm name=<library>\\n\" followed by a WebAssembly module.",
			"DELETE <library-name>", "LIST [LIBRARYNAME <pattern>] [WITHCODE]", "FLUSH [ASYNC|SYNC]",
			"DUMP", "RESTORE <payload> [FLUSH|APPEND|REPLACE]", "STATS", "KILL", "HELP",
		}
		w.WriteArray(len(lines))
		for _, l := range lines {
			w.WriteSimple(l)
		}
	default:
		w.WriteError("ERR unknown subcommand '" + string(argv[1]) + "'. Try FUNCTION HELP.")
	}
}

func (h *Host) list(args [][]byte, w engine.Writer) {
	var pattern []byte
	withCode := false
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "withcode":
			withCode = true
		case "libraryname":
			if i+1 >= len(args) {
				w.WriteError("ERR library name argument was not given")
				return
			}
			i++
			pattern = args[i]
		default:
			w.WriteError("ERR Unknown argument " + string(args[i]))
			return
		}
	}
	var libs []*Library
	for _, l := range h.Libraries() {
		if pattern == nil || engine.GlobMatch(pattern, []byte(l.name)) {
			libs = append(libs, l)
		}
	}
	w.WriteArray(len(libs))
	for _, l := range libs {
		fields := 3
		if withCode {
			fields = 4
		}
		w.WriteMap(fields)
		w.WriteBulkString("library_name")
		w.WriteBulkString(l.name)
		w.WriteBulkString("engine")
		w.WriteBulkString("WASM")
		w.WriteBulkString("functions")
		w.WriteArray(len(l.functions))
		for _, fn := range l.functions {
			w.WriteMap(3)
			w.WriteBulkString("name")
			w.WriteBulkString(fn)
			w.WriteBulkString("description")
			w.WriteNull()
			w.WriteBulkString("flags")
			w.WriteSet(0)
		}
		if withCode {
			w.WriteBulkString("library_code")
			w.WriteBulk(FormatPayload(l.name, l.wasm))
		}
	}
}

// RestorePolicy is FUNCTION RESTORE's policy.
type RestorePolicy int

// Policies, as in Redis.
const (
	// RestoreAppend adds the dumped libraries; any name already loaded is
	// an error and nothing is restored.
	RestoreAppend RestorePolicy = iota
	// RestoreReplace replaces loaded libraries of the same names.
	RestoreReplace
	// RestoreFlush deletes every library first.
	RestoreFlush
)

// dumpMagic starts a DUMP payload; the version is in it, so a future
// format can still read this one.
const dumpMagic = "KEELFN1\n"

// Dump serialises every library (name order) into an opaque payload that
// Restore accepts: the magic, then per library its name and module as
// uploaded, each u32le-length-prefixed, then a CRC-32 (IEEE) of all that.
// Snapshots store the same bytes.
func (h *Host) Dump() []byte {
	out := []byte(dumpMagic)
	libs := h.Libraries()
	out = binary.LittleEndian.AppendUint32(out, uint32(len(libs)))
	for _, l := range libs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(l.name)))
		out = append(out, l.name...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(l.wasm)))
		out = append(out, l.wasm...)
	}
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out))
}

func parseDump(payload []byte) (names []string, codes [][]byte, err error) {
	bad := userErrorf("ERR payload version or checksum are wrong")
	if len(payload) < len(dumpMagic)+8 || !bytes.HasPrefix(payload, []byte(dumpMagic)) {
		return nil, nil, bad
	}
	body, sum := payload[:len(payload)-4], binary.LittleEndian.Uint32(payload[len(payload)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, bad
	}
	p := body[len(dumpMagic):]
	next := func() ([]byte, bool) {
		if len(p) < 4 {
			return nil, false
		}
		n := binary.LittleEndian.Uint32(p)
		if uint64(len(p)-4) < uint64(n) {
			return nil, false
		}
		b := p[4 : 4+n]
		p = p[4+n:]
		return b, true
	}
	if len(p) < 4 {
		return nil, nil, bad
	}
	count := binary.LittleEndian.Uint32(p)
	p = p[4:]
	for i := uint32(0); i < count; i++ {
		name, ok1 := next()
		code, ok2 := next()
		if !ok1 || !ok2 {
			return nil, nil, bad
		}
		names = append(names, string(name))
		codes = append(codes, code)
	}
	if len(p) != 0 {
		return nil, nil, bad
	}
	return names, codes, nil
}

// Restore loads the libraries of a Dump payload under policy, all or
// nothing.
func (h *Host) Restore(ctx context.Context, payload []byte, policy RestorePolicy) error {
	names, codes, err := parseDump(payload)
	if err != nil {
		return err
	}
	// Compile everything first: a bad module leaves the registry as it was.
	libs := make([]*Library, len(names))
	closeAll := func() {
		for _, l := range libs {
			if l != nil {
				_ = l.compiled.Close(ctx)
			}
		}
	}
	for i := range names {
		if err := checkName("Library", names[i]); err != nil {
			closeAll()
			return err
		}
		if libs[i], err = h.compile(ctx, names[i], codes[i]); err != nil {
			closeAll()
			return err
		}
	}
	// Check names against what will remain.
	remain := map[string]*Library{}
	if policy != RestoreFlush {
		for n, l := range h.libs {
			remain[n] = l
		}
	}
	fnOwner := map[string]string{}
	for n, l := range remain {
		for _, fn := range l.functions {
			fnOwner[fn] = n
		}
	}
	seen := map[string]bool{}
	for _, l := range libs {
		if seen[l.name] {
			closeAll()
			return userErrorf("ERR Library '%s' appears twice in the payload", l.name)
		}
		seen[l.name] = true
		if old := remain[l.name]; old != nil {
			if policy == RestoreAppend {
				closeAll()
				return userErrorf("ERR Library %s already exists", l.name)
			}
			for _, fn := range old.functions {
				delete(fnOwner, fn)
			}
		}
	}
	for _, l := range libs {
		for _, fn := range l.functions {
			if owner, ok := fnOwner[fn]; ok && owner != l.name {
				closeAll()
				return userErrorf("ERR Function %s already exists", fn)
			}
			fnOwner[fn] = l.name
		}
	}
	if policy == RestoreFlush {
		h.Flush(ctx)
	}
	for _, l := range libs {
		if old := h.libs[l.name]; old != nil {
			h.remove(ctx, old)
		}
		h.libs[l.name] = l
		for _, fn := range l.functions {
			h.fns[fn] = l
		}
	}
	return nil
}

// ParseFCall splits FCALL/FCALL_RO argv into the function, its declared
// keys and its arguments, with Redis's errors.
func ParseFCall(argv [][]byte) (fn string, keys, args [][]byte, err error) {
	if len(argv) < 3 {
		name := "fcall"
		if len(argv) > 0 {
			name = strings.ToLower(string(argv[0]))
		}
		return "", nil, nil, userErrorf("ERR wrong number of arguments for '%s' command", name)
	}
	n, perr := strconv.ParseInt(string(argv[2]), 10, 64)
	if perr != nil {
		return "", nil, nil, userErrorf("ERR value is not an integer or out of range")
	}
	if n < 0 {
		return "", nil, nil, userErrorf("ERR Number of keys can't be negative")
	}
	rest := argv[3:]
	if n > int64(len(rest)) {
		return "", nil, nil, userErrorf("ERR Number of keys can't be greater than number of args")
	}
	return string(argv[1]), rest[:n], rest[n:], nil
}

// FCall runs an FCALL or FCALL_RO command end to end: it parses argv,
// calls the function and returns the result. The caller logs and applies
// Result.Effects, then writes Result's reply; on error it writes
// Message(err) and applies nothing.
func (h *Host) FCall(ctx context.Context, argv [][]byte, store Store) (Result, error) {
	fn, keys, args, err := ParseFCall(argv)
	if err != nil {
		return Result{}, err
	}
	readOnly := strings.EqualFold(string(argv[0]), "fcall_ro")
	return h.Call(ctx, fn, keys, args, store, readOnly)
}
