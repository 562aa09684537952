// abi: one function per host call, for udf's own tests and as a
// reference for guest authors.
#include "keel.h"

// getv 1 k -> bulk or nil
KEEL_FUNCTION(getv) {
    int found;
    keel_buf v = keel_get_buf(keel_key(0), &found);
    if (!found) keel_reply_nil();
    else keel_reply_bulk(v.ptr, v.len);
}

// setv 1 k v [ttl_ms] -> OK
KEEL_FUNCTION(setv) {
    keel_buf k = keel_key(0), v = keel_arg(0);
    int64_t ttl = 0;
    if (keel_arg_count() > 1 && !keel_arg_int(1, &ttl)) keel_abort_str("ERR ttl is not an integer");
    keel_set(k.ptr, k.len, v.ptr, v.len, ttl);
    keel_reply_simple_str("OK");
}

// delv N k... -> number deleted
KEEL_FUNCTION(delv) {
    int64_t n = 0;
    for (int32_t i = 0; i < keel_key_count(); i++) {
        keel_buf k = keel_key(i);
        n += keel_del(k.ptr, k.len);
    }
    keel_reply_int(n);
}

// existsv 1 k -> 0|1
KEEL_FUNCTION(existsv) {
    keel_buf k = keel_key(0);
    keel_reply_int(keel_exists(k.ptr, k.len));
}

// incrv 1 k n -> new value
KEEL_FUNCTION(incrv) {
    keel_buf k = keel_key(0);
    int64_t n;
    if (!keel_arg_int(0, &n)) keel_abort_str("ERR n is not an integer");
    keel_reply_int(keel_incrby(k.ptr, k.len, n));
}

// scanp 1 prefix [after [limit]] -> array of keys
KEEL_FUNCTION(scanp) {
    keel_buf p = keel_key(0);
    keel_buf after = {0, 0};
    int64_t limit = 0;
    if (keel_arg_count() > 0) after = keel_arg(0);
    if (keel_arg_count() > 1 && !keel_arg_int(1, &limit)) keel_abort_str("ERR limit is not an integer");
    int32_t n = keel_scan(p.ptr, p.len, after.ptr, after.len, (int32_t)limit, 0, 0);
    uint8_t *buf = keel_alloc(n);
    keel_scan(p.ptr, p.len, after.ptr, after.len, (int32_t)limit, buf, n);
    int32_t count = 0;
    for (int32_t off = 0; off < n; count++) off += 4 + *(uint32_t *)(buf + off);
    keel_reply_array(count);
    for (int32_t off = 0; off < n;) {
        uint32_t len = *(uint32_t *)(buf + off);
        keel_reply_bulk(buf + off + 4, (int32_t)len);
        off += 4 + len;
    }
}

// movev 2 src dst -> 1 if moved: reads, writes and deletes in one call
KEEL_FUNCTION(movev) {
    keel_buf s = keel_key(0), d = keel_key(1);
    int found;
    keel_buf v = keel_get_buf(s, &found);
    if (!found) { keel_reply_int(0); return; }
    keel_set(d.ptr, d.len, v.ptr, v.len, -1);
    keel_del(s.ptr, s.len);
    keel_reply_int(1);
}

// shapes 0 -> [1, "two", nil, [OK], (error in a reply)]
KEEL_FUNCTION(shapes) {
    keel_reply_array(5);
    keel_reply_int(1);
    keel_reply_bulk("two", 3);
    keel_reply_nil();
    keel_reply_array(1);
    keel_reply_simple_str("OK");
    keel_reply_error_str("nested error");
}

// clock 0 -> [now, random]
KEEL_FUNCTION(clock) {
    keel_reply_array(2);
    keel_reply_int(keel_now());
    keel_reply_int(keel_random());
}

// fail_reply 1 k -> writes k, then replies with an error (the write stays, as in Redis)
KEEL_FUNCTION(fail_reply) {
    keel_buf k = keel_key(0);
    keel_set(k.ptr, k.len, "x", 1, 0);
    keel_reply_error_str("CUSTOM something went wrong");
}

// logv 0 msg -> OK after logging msg at INFO
KEEL_FUNCTION(logv) {
    keel_buf m = keel_arg(0);
    keel_log(KEEL_LOG_INFO, m.ptr, m.len);
    keel_reply_simple_str("OK");
}

// twice 0 -> replies two values: refused
KEEL_FUNCTION(twice) {
    keel_reply_int(1);
    keel_reply_int(2);
}

// noreply 0 -> nil
KEEL_FUNCTION(noreply) {}

// recurse 0 n -> recursion n deep: a stack overflow trap for large n
__attribute__((noinline)) static int64_t deep(int64_t n) {
    volatile char pad[64];
    pad[0] = (char)n;
    if (n <= 0) return 0;
    return deep(n - 1) + pad[0];
}
KEEL_FUNCTION(recurse) {
    int64_t n;
    if (!keel_arg_int(0, &n)) keel_abort_str("ERR n is not an integer");
    keel_reply_int(deep(n));
}

// getarg 0 k -> reads a key named by an argument, not declared: refused
KEEL_FUNCTION(getarg) {
    keel_buf k = keel_arg(0);
    keel_reply_int(keel_exists(k.ptr, k.len));
}

// loopn 0 n -> a loop-heavy computation (n rounds of an LCG), for
// measuring the cost of fuel metering
KEEL_FUNCTION(loopn) {
    int64_t n;
    if (!keel_arg_int(0, &n)) keel_abort_str("ERR n is not an integer");
    uint64_t x = 1;
    for (int64_t i = 0; i < n; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    keel_reply_int((int64_t)(x >> 1));
}

// leak 0 -> how many calls this instance has seen: always 1, because every
// call gets a fresh instance
static int64_t calls;
KEEL_FUNCTION(leak) { keel_reply_int(++calls); }

// scribble 0 -> grows memory by a page, replies the byte found at its start
// and leaves 0xAB there: always 0, because no memory is reused dirty
KEEL_FUNCTION(scribble) {
    int32_t prev = __builtin_wasm_memory_grow(0, 1);
    if (prev < 0) keel_abort_str("ERR cannot grow");
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)((uint32_t)prev * 65536u);
    keel_reply_int(p[0] + p[65535]);
    p[0] = 0xAB;
    p[65535] = 0xCD;
}

// exit3 1 k -> writes k, then calls WASI proc_exit(3): the call fails with
// "exited with code 3" and the write is discarded
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_exit"), noreturn)) void wasi_proc_exit(int32_t code);
KEEL_FUNCTION(exit3) {
    keel_buf k = keel_key(0);
    keel_set(k.ptr, k.len, "x", 1, 0);
    wasi_proc_exit(3);
}

/* FCALL callreply 1 k CMD k ...: keel.call with no buffer, then keel.get of
 * key 0, then keel.call_reply: [the command's reply, the value]. The reply
 * kept for call_reply must survive the string call in between. */
KEEL_FUNCTION(callreply) {
    int32_t argc = keel_arg_count(), n = 0;
    keel_buf *argv = (keel_buf *)keel_alloc(argc * (int32_t)sizeof(keel_buf));
    for (int32_t i = 0; i < argc; i++) {
        argv[i] = keel_arg(i);
        n += 4 + argv[i].len;
    }
    uint8_t *enc = keel_alloc(n), *q = enc;
    for (int32_t i = 0; i < argc; i++) {
        uint32_t l = (uint32_t)argv[i].len;
        q[0] = (uint8_t)l, q[1] = (uint8_t)(l >> 8), q[2] = (uint8_t)(l >> 16), q[3] = (uint8_t)(l >> 24);
        q += 4;
        for (int32_t j = 0; j < argv[i].len; j++) *q++ = argv[i].ptr[j];
    }
    int32_t len = keel_call_raw(enc, n, 0, 0);
    int found;
    keel_buf v = keel_get_buf(keel_key(0), &found);
    uint8_t *r = keel_alloc(len);
    keel_call_reply(r, len);
    keel_value val;
    keel_value_read(r, r + len, &val);
    keel_reply_array(2);
    keel_reply_value(val);
    if (found) keel_reply_bulk(v.ptr, v.len); else keel_reply_nil();
}
