package udf

import (
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// wasiModule is the sandboxed subset of WASI that Go guests (GOOS=wasip1)
// need to start. It is keel's own, not wazero's: there is no filesystem,
// network, environment or argument list; clocks read the call's time and
// random_get reads keel's injected source, so a guest replays exactly;
// stdout and stderr go to the log. Every other WASI function a toolchain
// may import answers EBADF/ENOSYS/ENOTCAPABLE, which guests' runtimes
// handle as "no such file".
const wasiModule = "wasi_snapshot_preview1"

// WASI errno values.
const (
	errnoSuccess    = 0
	errnoBadf       = 8
	errnoInval      = 28
	errnoNosys      = 52
	errnoNotcapable = 76
)

// wasiStdioBytesMax bounds what one fd_write gathers for the log.
const (
	wasiStdioBytesMax = 64 << 10
	wasiIovsMax       = 1024
)

func errnoFunc(name string, errno uint64, params ...api.ValueType) hostFunc {
	return hostFunc{name, params, sig(i32), func(st *callState, _ api.Module, s []uint64) {
		s[0] = errno
	}}
}

func putU32(st *callState, mod api.Module, ptr uint64, v uint32, op string) {
	st.written(uint32(ptr), 4)
	if !mod.Memory().WriteUint32Le(uint32(ptr), v) {
		st.fail(userErrorf("ERR function '%s' passed an out-of-bounds buffer to %s.%s", st.fn, wasiModule, op))
	}
}

var wasiFuncs = []hostFunc{
	// No arguments and no environment.
	{"args_sizes_get", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		putU32(st, mod, s[0], 0, "args_sizes_get")
		putU32(st, mod, s[1], 0, "args_sizes_get")
		s[0] = errnoSuccess
	}},
	{"args_get", sig(i32, i32), sig(i32), func(_ *callState, _ api.Module, s []uint64) { s[0] = errnoSuccess }},
	{"environ_sizes_get", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		putU32(st, mod, s[0], 0, "environ_sizes_get")
		putU32(st, mod, s[1], 0, "environ_sizes_get")
		s[0] = errnoSuccess
	}},
	{"environ_get", sig(i32, i32), sig(i32), func(_ *callState, _ api.Module, s []uint64) { s[0] = errnoSuccess }},
	// clock_time_get(id, precision, result_ptr): every clock reads the
	// call's time. It does not advance within a call: a call is one
	// instant of the log.
	{"clock_time_get", sig(i32, i64, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		st.written(uint32(s[2]), 8)
		if !mod.Memory().WriteUint64Le(uint32(s[2]), uint64(st.now)*1_000_000) {
			st.fail(userErrorf("ERR function '%s' passed an out-of-bounds buffer to %s.clock_time_get", st.fn, wasiModule))
		}
		s[0] = errnoSuccess
	}},
	{"clock_res_get", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		st.written(uint32(s[1]), 8)
		if !mod.Memory().WriteUint64Le(uint32(s[1]), 1_000_000) {
			st.fail(userErrorf("ERR function '%s' passed an out-of-bounds buffer to %s.clock_res_get", st.fn, wasiModule))
		}
		s[0] = errnoSuccess
	}},
	{"random_get", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		buf := st.mem(mod, s[0], s[1], "random_get")
		st.chargeBytes(len(buf))
		st.written(uint32(s[0]), uint32(len(buf)))
		var w [8]byte
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(w[:], st.store.Rand())
			copy(buf[i:], w[:])
		}
		s[0] = errnoSuccess
	}},
	// fd_write(fd, iovs, iovs_len, nwritten_ptr): stdout and stderr go to
	// the log; no other descriptor exists.
	{"fd_write", sig(i32, i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		fd := uint32(s[0])
		if fd != 1 && fd != 2 {
			s[0] = errnoBadf
			return
		}
		if uint32(s[2]) > wasiIovsMax {
			s[0] = errnoInval
			return
		}
		iovs := st.mem(mod, s[1], uint64(uint32(s[2]))*8, "fd_write")
		var msg []byte
		total := uint32(0)
		for i := 0; i+8 <= len(iovs); i += 8 {
			p := binary.LittleEndian.Uint32(iovs[i:])
			n := binary.LittleEndian.Uint32(iovs[i+4:])
			b := st.mem(mod, uint64(p), uint64(n), "fd_write")
			total += n
			if len(msg) < wasiStdioBytesMax {
				msg = append(msg, b[:min(len(b), wasiStdioBytesMax-len(msg))]...)
			}
		}
		st.chargeBytes(int(total))
		level := LogInfo
		if fd == 2 {
			level = LogWarn
		}
		if len(msg) > 0 {
			st.log(level, msg)
		}
		putU32(st, mod, s[3], total, "fd_write")
		s[0] = errnoSuccess
	}},
	// proc_exit ends the call; its writes are discarded like any failure's.
	// (The verdict is decided in callState.verdict: a Go runtime that exits
	// after a failed memory.grow is reported as the memory limit.)
	{"proc_exit", sig(i32), nil, func(_ *callState, _ api.Module, s []uint64) {
		panic(sys.NewExitError(uint32(s[0])))
	}},
	{"sched_yield", nil, sig(i32), func(_ *callState, _ api.Module, s []uint64) { s[0] = errnoSuccess }},
	// poll_oneoff is how a guest sleeps; a call cannot wait.
	errnoFunc("poll_oneoff", errnoNosys, i32, i32, i32, i32),
	errnoFunc("fd_close", errnoBadf, i32),
	errnoFunc("fd_fdstat_get", errnoBadf, i32, i32),
	errnoFunc("fd_fdstat_set_flags", errnoBadf, i32, i32),
	errnoFunc("fd_fdstat_set_rights", errnoBadf, i32, i64, i64),
	errnoFunc("fd_prestat_get", errnoBadf, i32, i32),
	errnoFunc("fd_prestat_dir_name", errnoBadf, i32, i32, i32),
	errnoFunc("fd_read", errnoBadf, i32, i32, i32, i32),
	errnoFunc("fd_pread", errnoBadf, i32, i32, i32, i64, i32),
	errnoFunc("fd_pwrite", errnoBadf, i32, i32, i32, i64, i32),
	errnoFunc("fd_seek", errnoBadf, i32, i64, i32, i32),
	errnoFunc("fd_tell", errnoBadf, i32, i32),
	errnoFunc("fd_sync", errnoBadf, i32),
	errnoFunc("fd_datasync", errnoBadf, i32),
	errnoFunc("fd_advise", errnoBadf, i32, i64, i64, i32),
	errnoFunc("fd_allocate", errnoBadf, i32, i64, i64),
	errnoFunc("fd_filestat_get", errnoBadf, i32, i32),
	errnoFunc("fd_filestat_set_size", errnoBadf, i32, i64),
	errnoFunc("fd_filestat_set_times", errnoBadf, i32, i64, i64, i32),
	errnoFunc("fd_readdir", errnoBadf, i32, i32, i32, i64, i32),
	errnoFunc("fd_renumber", errnoBadf, i32, i32),
	errnoFunc("path_open", errnoNotcapable, i32, i32, i32, i32, i32, i64, i64, i32, i32),
	errnoFunc("path_filestat_get", errnoNotcapable, i32, i32, i32, i32, i32),
	errnoFunc("path_filestat_set_times", errnoNotcapable, i32, i32, i32, i32, i64, i64, i32),
	errnoFunc("path_create_directory", errnoNotcapable, i32, i32, i32),
	errnoFunc("path_remove_directory", errnoNotcapable, i32, i32, i32),
	errnoFunc("path_unlink_file", errnoNotcapable, i32, i32, i32),
	errnoFunc("path_readlink", errnoNotcapable, i32, i32, i32, i32, i32, i32),
	errnoFunc("path_rename", errnoNotcapable, i32, i32, i32, i32, i32, i32),
	errnoFunc("path_symlink", errnoNotcapable, i32, i32, i32, i32, i32),
	errnoFunc("path_link", errnoNotcapable, i32, i32, i32, i32, i32, i32, i32),
	errnoFunc("sock_accept", errnoNotcapable, i32, i32, i32),
	errnoFunc("sock_recv", errnoNotcapable, i32, i32, i32, i32, i32, i32),
	errnoFunc("sock_send", errnoNotcapable, i32, i32, i32, i32, i32),
	errnoFunc("sock_shutdown", errnoNotcapable, i32, i32),
}
