// hostile: the guests of issue 15, which keel stops by fuel or from
// outside. Built with -mbulk-memory (build.sh), so memset is one
// memory.fill instruction.
//
//   FCALL fill_loop 0         memory.fill of 64 KiB in a loop: when bulk
//                             instructions cost one unit of fuel, this held
//                             the server for 13 s; now about 2 ms
//   FCALL fill_once 0 n       grows memory by n bytes and fills them once
//   FCALL write_spin 1 key    writes key, then loops for ever: FUNCTION KILL
//                             answers UNKILLABLE, a shutdown still stops it,
//                             and the write is never applied
//   FCALL spin_ro 0           loops for ever without writing
#include "keel.h"

// Not static: the fills must not be optimised away as dead stores.
unsigned char buf[65536];

KEEL_FUNCTION(fill_loop) {
    volatile int v = 0;
    for (;;) __builtin_memset(buf, v++, sizeof buf);
}

KEEL_FUNCTION(fill_once) {
    int64_t n;
    if (!keel_arg_int(0, &n) || n < 0) keel_abort_str("ERR usage: FCALL fill_once 0 bytes");
    unsigned long base = __builtin_wasm_memory_size(0) * 65536ul;
    if (__builtin_wasm_memory_grow(0, (n + 65535) / 65536) < 0) keel_abort_str("ERR no memory");
    __builtin_memset((void *)base, 1, (unsigned long)n);
    keel_reply_int(n);
}

KEEL_FUNCTION(write_spin) {
    keel_buf key = keel_key(0);
    keel_set(key.ptr, key.len, "1", 1, 0);
    volatile int64_t i = 0;
    for (;;) i++;
}

KEEL_FUNCTION(spin_ro) {
    volatile int64_t i = 0;
    for (;;) i++;
}
