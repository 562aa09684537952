// counter: FCALL incr_by 1 <key> <n>  ->  the key's new value.
#include "keel.h"

KEEL_FUNCTION(incr_by) {
    keel_buf key = keel_key(0);
    int64_t n;
    if (keel_arg_count() != 1 || !keel_arg_int(0, &n)) keel_abort_str("ERR usage: FCALL incr_by 1 key n");
    keel_reply_int(keel_incrby(key.ptr, key.len, n));
}
