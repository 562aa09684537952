// ratelimit: a token bucket on one key, refilled by keel's clock.
//
//   FCALL ratelimit 1 <key> <capacity> <refill_per_sec> [cost]
//     ->  [allowed (1|0), tokens left]
//
// The bucket is stored as "<milli-tokens>:<last refill ms>" and expires
// once it would be full again, so idle buckets cost nothing.
#include "keel.h"

static int parse_state(keel_buf v, int64_t *milli, int64_t *last) {
    for (int32_t i = 0; i < v.len; i++) {
        if (v.ptr[i] == ':') {
            return keel_parse_int((keel_buf){v.ptr, i}, milli) &&
                   keel_parse_int((keel_buf){v.ptr + i + 1, v.len - i - 1}, last);
        }
    }
    return 0;
}

KEEL_FUNCTION(ratelimit) {
    int32_t nargs = keel_arg_count();
    int64_t capacity, rate, cost = 1;
    if (keel_key_count() != 1 || nargs < 2 || nargs > 3 || !keel_arg_int(0, &capacity) ||
        !keel_arg_int(1, &rate) || (nargs == 3 && !keel_arg_int(2, &cost)) || capacity <= 0 ||
        capacity > 1000000000 || rate <= 0 || rate > 1000000000 || cost < 0)
        keel_abort_str("ERR usage: FCALL ratelimit 1 key capacity refill_per_sec [cost]");
    keel_buf key = keel_key(0);
    int64_t now = keel_now();
    int64_t full = capacity * 1000, milli = full, last = now;
    int found;
    keel_buf v = keel_get_buf(key, &found);
    if (found && !parse_state(v, &milli, &last)) keel_abort_str("ERR ratelimit key holds something else");
    if (now > last) {
        int64_t gained = (now - last) * rate; // milli-tokens: rate/s = rate milli-tokens/ms
        milli = gained >= full - milli ? full : milli + gained;
    }
    int64_t allowed = 0;
    if (milli >= cost * 1000) {
        milli -= cost * 1000;
        allowed = 1;
    }
    char buf[48];
    int32_t n = keel_format_int(milli, buf);
    buf[n++] = ':';
    n += keel_format_int(now, buf + n);
    int64_t ttl = (full - milli) / rate + 1000;
    keel_set(key.ptr, key.len, buf, n, ttl);
    keel_reply_array(2);
    keel_reply_int(allowed);
    keel_reply_int(milli / 1000);
}
