/*
 * keel.h — the keel guest SDK for C (ABI v1). One header, no libc, no
 * allocator: functions are WebAssembly exports that read their keys and
 * arguments, read and write the keyspace through keel's host calls, and
 * build a reply. Specification: docs/functions.md.
 *
 * Build a library (Debian: apt-get install clang lld):
 *
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
 *         -Wl,--strip-all -o mylib.wasm mylib.c
 *
 * and define functions with KEEL_FUNCTION:
 *
 *   #include "keel.h"
 *   KEEL_FUNCTION(incr_by) {
 *       keel_buf key = keel_key(0);
 *       int64_t n;
 *       if (!keel_arg_int(0, &n)) keel_abort_str("ERR increment is not an integer");
 *       keel_reply_int(keel_incrby(key.ptr, key.len, n));
 *   }
 *
 * A call runs in a fresh instance and a fresh memory; nothing survives it.
 * Writes are buffered by keel and applied when the function returns;
 * keel_abort (or any trap) discards them all.
 */
#ifndef KEEL_H
#define KEEL_H

#include <stdint.h>
#include <stddef.h>

#define KEEL_IMPORT(name) __attribute__((import_module("keel"), import_name(#name)))

/* Raw host calls (ABI v1). Lengths and buffers are in guest memory. */
KEEL_IMPORT(key_count) int32_t keel_key_count(void);
KEEL_IMPORT(arg_count) int32_t keel_arg_count(void);
KEEL_IMPORT(key) int32_t keel_key_read(int32_t i, void *buf, int32_t cap);
KEEL_IMPORT(arg) int32_t keel_arg_read(int32_t i, void *buf, int32_t cap);
/* Returns the value's length (copying at most cap bytes), or -1 if the key does not exist. */
KEEL_IMPORT(get) int32_t keel_get(const void *key, int32_t klen, void *buf, int32_t cap);
KEEL_IMPORT(exists) int32_t keel_exists(const void *key, int32_t klen);
/* ttl_ms: 0 = no expiry, -1 = keep the key's TTL, >0 = expire ttl_ms after the call's time. */
KEEL_IMPORT(set) void keel_set(const void *key, int32_t klen, const void *val, int32_t vlen, int64_t ttl_ms);
KEEL_IMPORT(del) int32_t keel_del(const void *key, int32_t klen);
KEEL_IMPORT(incrby) int64_t keel_incrby(const void *key, int32_t klen, int64_t delta);
/* Keys under a declared prefix, after `after`, as u32le length + bytes each; returns the encoded length. */
KEEL_IMPORT(scan) int32_t keel_scan(const void *prefix, int32_t plen, const void *after, int32_t alen,
                                    int32_t limit, void *buf, int32_t cap);
KEEL_IMPORT(now) int64_t keel_now(void);
KEEL_IMPORT(random) int64_t keel_random(void);
KEEL_IMPORT(log) void keel_log(int32_t level, const void *msg, int32_t len);
KEEL_IMPORT(reply_nil) void keel_reply_nil(void);
KEEL_IMPORT(reply_int) void keel_reply_int(int64_t v);
KEEL_IMPORT(reply_bulk) void keel_reply_bulk(const void *b, int32_t len);
KEEL_IMPORT(reply_simple) void keel_reply_simple(const void *s, int32_t len);
KEEL_IMPORT(reply_error) void keel_reply_error(const void *msg, int32_t len);
KEEL_IMPORT(reply_array) void keel_reply_array(int32_t n);
KEEL_IMPORT(abort) __attribute__((noreturn)) void keel_abort(const void *msg, int32_t len);

#define KEEL_LOG_DEBUG 0
#define KEEL_LOG_INFO 1
#define KEEL_LOG_WARN 2
#define KEEL_LOG_ERROR 3

/* Declares the ABI version; keel refuses modules without it. */
__attribute__((export_name("keel_abi_v1"))) void keel_abi_v1(void) {}

/* KEEL_FUNCTION(name) { ... } defines a callable function. */
#define KEEL_FUNCTION(name) __attribute__((export_name(#name))) void name(void)

/* ---- Conveniences ---- */

#ifndef KEEL_SCRATCH_BYTES
#define KEEL_SCRATCH_BYTES 16384
#endif

typedef struct {
    const uint8_t *ptr;
    int32_t len;
} keel_buf;

/* A bump arena for inputs: a call is short and its memory is discarded. */
static uint8_t keel_scratch_[KEEL_SCRATCH_BYTES];
static int32_t keel_scratch_used_;

static inline uint8_t *keel_alloc(int32_t n) {
    if (n < 0 || n > KEEL_SCRATCH_BYTES - keel_scratch_used_) {
        static const char msg[] = "ERR keel.h scratch arena exhausted (define KEEL_SCRATCH_BYTES larger)";
        keel_abort(msg, sizeof msg - 1);
    }
    uint8_t *p = keel_scratch_ + keel_scratch_used_;
    keel_scratch_used_ += (n + 7) & ~7;
    return p;
}

static inline int32_t keel_strlen_(const char *s) {
    int32_t n = 0;
    while (s[n]) n++;
    return n;
}

static inline keel_buf keel_key(int32_t i) {
    int32_t n = keel_key_read(i, 0, 0);
    uint8_t *p = keel_alloc(n);
    keel_key_read(i, p, n);
    return (keel_buf){p, n};
}

static inline keel_buf keel_arg(int32_t i) {
    int32_t n = keel_arg_read(i, 0, 0);
    uint8_t *p = keel_alloc(n);
    keel_arg_read(i, p, n);
    return (keel_buf){p, n};
}

/* Parses a decimal int64 the way Redis does (no spaces, no '+'). */
static inline int keel_parse_int(keel_buf b, int64_t *out) {
    if (b.len == 0 || b.len > 20) return 0;
    int neg = b.ptr[0] == '-';
    int32_t i = neg;
    if (i == b.len) return 0;
    uint64_t v = 0;
    for (; i < b.len; i++) {
        uint8_t c = b.ptr[i];
        if (c < '0' || c > '9') return 0;
        if (v > (UINT64_MAX - (c - '0')) / 10) return 0;
        v = v * 10 + (c - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return 0;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)v;
    }
    return 1;
}

static inline int keel_arg_int(int32_t i, int64_t *out) { return keel_parse_int(keel_arg(i), out); }

/* Reads a key's value into the arena; found is 0 when the key does not exist. */
static inline keel_buf keel_get_buf(keel_buf key, int *found) {
    int32_t n = keel_get(key.ptr, key.len, 0, 0);
    *found = n >= 0;
    if (n < 0) return (keel_buf){0, 0};
    uint8_t *p = keel_alloc(n);
    keel_get(key.ptr, key.len, p, n);
    return (keel_buf){p, n};
}

/* Reads an integer value; a missing key reads as 0. Aborts on a non-integer. */
static inline int64_t keel_get_int(keel_buf key) {
    int found;
    keel_buf v = keel_get_buf(key, &found);
    int64_t n = 0;
    if (found && !keel_parse_int(v, &n)) {
        static const char msg[] = "ERR value is not an integer or out of range";
        keel_abort(msg, sizeof msg - 1);
    }
    return n;
}

/* Formats v in decimal into buf (at least 21 bytes); returns the length. */
static inline int32_t keel_format_int(int64_t v, char *buf) {
    char tmp[21];
    int32_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int32_t len = 0;
    if (v < 0) buf[len++] = '-';
    while (n) buf[len++] = tmp[--n];
    return len;
}

static inline void keel_set_int(keel_buf key, int64_t v, int64_t ttl_ms) {
    char buf[21];
    keel_set(key.ptr, key.len, buf, keel_format_int(v, buf), ttl_ms);
}

static inline __attribute__((noreturn)) void keel_abort_str(const char *msg) { keel_abort(msg, keel_strlen_(msg)); }
static inline void keel_reply_error_str(const char *msg) { keel_reply_error(msg, keel_strlen_(msg)); }
static inline void keel_reply_simple_str(const char *s) { keel_reply_simple(s, keel_strlen_(s)); }
static inline void keel_log_str(int32_t level, const char *msg) { keel_log(level, msg, keel_strlen_(msg)); }

#endif /* KEEL_H */
