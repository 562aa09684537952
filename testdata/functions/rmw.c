// rmw: FCALL rmw 1 <key> <n>  ->  the key's final value.
// Reads and writes one key several times in one call: n times it reads
// the value, appends "+" keeping the key's TTL, and reads it back (a
// read that does not see the call's own write aborts the call); from
// n = 3 on it then deletes the key, checks it is gone, and writes the
// value back without a TTL. A key of another type fails the call with
// WRONGTYPE, nothing written. The simulator's grammar workload calls it
// on hot keys (sim/grammar.go), and its model predicts each reply.
#include "keel.h"

static int same(keel_buf a, const uint8_t *b, int32_t n) {
    if (a.len != n) return 0;
    for (int32_t i = 0; i < n; i++)
        if (a.ptr[i] != b[i]) return 0;
    return 1;
}

KEEL_FUNCTION(rmw) {
    if (keel_key_count() != 1 || keel_arg_count() != 1) keel_abort_str("ERR usage: FCALL rmw 1 key n");
    keel_buf key = keel_key(0);
    int64_t n;
    if (!keel_arg_int(0, &n) || n < 0 || n > 8) keel_abort_str("ERR n must be an integer from 0 to 8");
    int found;
    keel_buf v = keel_get_buf(key, &found);
    for (int64_t i = 0; i < n; i++) {
        uint8_t *w = keel_alloc(v.len + 1);
        for (int32_t j = 0; j < v.len; j++) w[j] = v.ptr[j];
        w[v.len] = '+';
        int32_t wn = v.len + 1;
        keel_set(key.ptr, key.len, w, wn, -1);
        v = keel_get_buf(key, &found);
        if (!found || !same(v, w, wn)) keel_abort_str("ERR rmw did not read its own write");
    }
    if (n >= 3) {
        if (keel_del(key.ptr, key.len) != 1) keel_abort_str("ERR rmw could not delete its own write");
        if (keel_exists(key.ptr, key.len)) keel_abort_str("ERR rmw read a key it deleted");
        keel_set(key.ptr, key.len, v.ptr, v.len, 0);
        v = keel_get_buf(key, &found);
    }
    if (!found) {
        keel_reply_nil();
        return;
    }
    keel_reply_bulk(v.ptr, v.len);
}
