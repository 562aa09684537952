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
/* An engine command on declared keys (HSET, LPUSH, ZADD, ...): argv is each argument as
 * u32le length + bytes; the encoded reply (see keel_value) is copied to buf as far as it
 * fits and its full length returned. keel_call_reply copies the same reply again. */
KEEL_IMPORT(call) int32_t keel_call_raw(const void *argv, int32_t alen, void *buf, int32_t cap);
KEEL_IMPORT(call_reply) int32_t keel_call_reply(void *buf, int32_t cap);
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

/* ---- Commands on any type (keel.call) ----
 *
 * keel_call(argc, argv) runs one engine command on declared keys and returns its reply
 * as a keel_value, decoded from the host's encoding (docs/functions.md):
 *   '_' nil   ':' integer (v.i)   '$' bulk (v.s; doubles as text)   '+' status (v.s)
 *   '-' error (v.s, Redis's text: "WRONGTYPE ...")   '*' array of v.i elements
 * An array's elements follow it: keel_value_at(v, i) decodes element i.
 * Error replies are values: check v.type == '-' (keel_check aborts the call with it).
 * The typed wrappers below (keel_hset, keel_lpush, keel_zincrby, ...) abort on an error
 * reply, so a WRONGTYPE ends the call with Redis's text and nothing written. */

typedef struct {
    char type;
    int64_t i;
    keel_buf s;
    const uint8_t *p;   /* this value's encoding */
    const uint8_t *end; /* end of the whole reply */
} keel_value;

static inline uint32_t keel_u32_(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline __attribute__((noreturn)) void keel_bad_reply_(void) {
    static const char msg[] = "ERR keel.h: malformed keel.call reply";
    keel_abort(msg, sizeof msg - 1);
}

/* Decodes the value at p; returns the position after its header (an array's first element). */
static inline const uint8_t *keel_value_read(const uint8_t *p, const uint8_t *end, keel_value *v) {
    if (p >= end) keel_bad_reply_();
    v->type = (char)p[0];
    v->p = p;
    v->end = end;
    v->i = 0;
    v->s = (keel_buf){0, 0};
    switch (v->type) {
    case '_':
        return p + 1;
    case ':': {
        if (end - p < 9) keel_bad_reply_();
        uint64_t u = (uint64_t)keel_u32_(p + 1) | (uint64_t)keel_u32_(p + 5) << 32;
        v->i = (int64_t)u;
        return p + 9;
    }
    case '*':
        if (end - p < 5) keel_bad_reply_();
        v->i = keel_u32_(p + 1);
        return p + 5;
    case '$':
    case '+':
    case '-': {
        if (end - p < 5) keel_bad_reply_();
        uint32_t n = keel_u32_(p + 1);
        if ((uint32_t)(end - p - 5) < n) keel_bad_reply_();
        v->s = (keel_buf){p + 5, (int32_t)n};
        return p + 5 + n;
    }
    }
    keel_bad_reply_();
}

/* Returns the position after the whole value at p. */
static inline const uint8_t *keel_value_skip(const uint8_t *p, const uint8_t *end) {
    keel_value v;
    const uint8_t *q = keel_value_read(p, end, &v);
    if (v.type == '*')
        for (int64_t k = 0; k < v.i; k++) q = keel_value_skip(q, end);
    return q;
}

/* Element i of an array value. */
static inline keel_value keel_value_at(keel_value arr, int64_t i) {
    keel_value v;
    if (arr.type != '*' || i < 0 || i >= arr.i) keel_bad_reply_();
    const uint8_t *q = keel_value_read(arr.p, arr.end, &v);
    for (int64_t k = 0; k < i; k++) q = keel_value_skip(q, arr.end);
    keel_value_read(q, arr.end, &v);
    return v;
}

/* Runs a command; argv[0] is its name. The reply lives in the arena. */
static inline keel_value keel_call(int32_t argc, const keel_buf *argv) {
    int32_t n = 0;
    for (int32_t k = 0; k < argc; k++) n += 4 + argv[k].len;
    uint8_t *a = keel_alloc(n), *q = a;
    for (int32_t k = 0; k < argc; k++) {
        uint32_t l = (uint32_t)argv[k].len;
        q[0] = (uint8_t)l, q[1] = (uint8_t)(l >> 8), q[2] = (uint8_t)(l >> 16), q[3] = (uint8_t)(l >> 24);
        q += 4;
        for (int32_t j = 0; j < argv[k].len; j++) *q++ = argv[k].ptr[j];
    }
    int32_t len = keel_call_raw(a, n, 0, 0);
    uint8_t *r = keel_alloc(len);
    keel_call_reply(r, len);
    keel_value v;
    keel_value_read(r, r + len, &v);
    return v;
}

/* Aborts the call with an error reply's text (discarding every write); returns v otherwise. */
static inline keel_value keel_check(keel_value v) {
    if (v.type == '-') keel_abort(v.s.ptr, v.s.len);
    return v;
}

static inline keel_buf keel_str(const char *s) { return (keel_buf){(const uint8_t *)s, keel_strlen_(s)}; }

static inline keel_buf keel_int_buf(int64_t v) {
    uint8_t *p = keel_alloc(21);
    return (keel_buf){p, keel_format_int(v, (char *)p)};
}

#define KEEL_CALL(...) keel_check(keel_call(sizeof((keel_buf[]){__VA_ARGS__}) / sizeof(keel_buf), (keel_buf[]){__VA_ARGS__}))

/* Reads a nil-or-bulk reply: found 0 for nil. */
static inline keel_buf keel_bulk_(keel_value v, int *found) {
    *found = v.type == '$';
    return v.s;
}

static inline int64_t keel_hset(keel_buf key, keel_buf field, keel_buf val) { return KEEL_CALL(keel_str("HSET"), key, field, val).i; }
static inline keel_buf keel_hget(keel_buf key, keel_buf field, int *found) { return keel_bulk_(KEEL_CALL(keel_str("HGET"), key, field), found); }
static inline int64_t keel_hdel(keel_buf key, keel_buf field) { return KEEL_CALL(keel_str("HDEL"), key, field).i; }
static inline int64_t keel_hincrby(keel_buf key, keel_buf field, int64_t d) { return KEEL_CALL(keel_str("HINCRBY"), key, field, keel_int_buf(d)).i; }
static inline int64_t keel_hlen(keel_buf key) { return KEEL_CALL(keel_str("HLEN"), key).i; }
static inline keel_value keel_hgetall(keel_buf key) { return KEEL_CALL(keel_str("HGETALL"), key); }
static inline int64_t keel_lpush(keel_buf key, keel_buf val) { return KEEL_CALL(keel_str("LPUSH"), key, val).i; }
static inline int64_t keel_rpush(keel_buf key, keel_buf val) { return KEEL_CALL(keel_str("RPUSH"), key, val).i; }
static inline keel_buf keel_lpop(keel_buf key, int *found) { return keel_bulk_(KEEL_CALL(keel_str("LPOP"), key), found); }
static inline keel_buf keel_rpop(keel_buf key, int *found) { return keel_bulk_(KEEL_CALL(keel_str("RPOP"), key), found); }
static inline int64_t keel_llen(keel_buf key) { return KEEL_CALL(keel_str("LLEN"), key).i; }
static inline keel_value keel_lrange(keel_buf key, int64_t start, int64_t stop) { return KEEL_CALL(keel_str("LRANGE"), key, keel_int_buf(start), keel_int_buf(stop)); }
static inline int64_t keel_sadd(keel_buf key, keel_buf m) { return KEEL_CALL(keel_str("SADD"), key, m).i; }
static inline int64_t keel_srem(keel_buf key, keel_buf m) { return KEEL_CALL(keel_str("SREM"), key, m).i; }
static inline int64_t keel_sismember(keel_buf key, keel_buf m) { return KEEL_CALL(keel_str("SISMEMBER"), key, m).i; }
static inline int64_t keel_scard(keel_buf key) { return KEEL_CALL(keel_str("SCARD"), key).i; }
static inline keel_value keel_smembers(keel_buf key) { return KEEL_CALL(keel_str("SMEMBERS"), key); }
/* score is text, as ZADD takes it ("1.5", "+inf"). */
static inline int64_t keel_zadd(keel_buf key, keel_buf score, keel_buf m) { return KEEL_CALL(keel_str("ZADD"), key, score, m).i; }
/* Returns the new score as text. */
static inline keel_buf keel_zincrby(keel_buf key, keel_buf incr, keel_buf m) { return KEEL_CALL(keel_str("ZINCRBY"), key, incr, m).s; }
static inline keel_buf keel_zscore(keel_buf key, keel_buf m, int *found) { return keel_bulk_(KEEL_CALL(keel_str("ZSCORE"), key, m), found); }
/* -1 when m is not a member. */
static inline int64_t keel_zrank(keel_buf key, keel_buf m) { keel_value v = KEEL_CALL(keel_str("ZRANK"), key, m); return v.type == ':' ? v.i : -1; }
static inline int64_t keel_zrevrank(keel_buf key, keel_buf m) { keel_value v = KEEL_CALL(keel_str("ZREVRANK"), key, m); return v.type == ':' ? v.i : -1; }
static inline keel_value keel_zrange(keel_buf key, int64_t start, int64_t stop) { return KEEL_CALL(keel_str("ZRANGE"), key, keel_int_buf(start), keel_int_buf(stop)); }
static inline int64_t keel_zrem(keel_buf key, keel_buf m) { return KEEL_CALL(keel_str("ZREM"), key, m).i; }
static inline int64_t keel_zcard(keel_buf key) { return KEEL_CALL(keel_str("ZCARD"), key).i; }
/* "none", "string", "list", "set", "zset", "hash". */
static inline keel_buf keel_type(keel_buf key) { return KEEL_CALL(keel_str("TYPE"), key).s; }
static inline int64_t keel_expire(keel_buf key, int64_t seconds) { return KEEL_CALL(keel_str("EXPIRE"), key, keel_int_buf(seconds)).i; }

/* Replies with a decoded value as it is (arrays element by element). */
static inline const uint8_t *keel_reply_value_(const uint8_t *p, const uint8_t *end) {
    keel_value v;
    const uint8_t *q = keel_value_read(p, end, &v);
    switch (v.type) {
    case '_': keel_reply_nil(); break;
    case ':': keel_reply_int(v.i); break;
    case '$': keel_reply_bulk(v.s.ptr, v.s.len); break;
    case '+': keel_reply_simple(v.s.ptr, v.s.len); break;
    case '-': keel_reply_error(v.s.ptr, v.s.len); break;
    case '*':
        keel_reply_array((int32_t)v.i);
        for (int64_t k = 0; k < v.i; k++) q = keel_reply_value_(q, end);
        break;
    }
    return q;
}
static inline void keel_reply_value(keel_value v) { keel_reply_value_(v.p, v.end); }

#endif /* KEEL_H */
