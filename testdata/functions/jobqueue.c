/*
 * jobqueue: a reliable job queue on a list, a list of jobs being worked on
 * and a hash of payloads, changed together or not at all.
 *
 *   FCALL job_push 2 q:ready q:jobs id payload   -> jobs ready, or ERR job exists (nothing written)
 *   FCALL job_take 3 q:ready q:running q:jobs    -> [id, payload], or nil when none is ready
 *   FCALL job_done 2 q:running q:jobs id         -> 1, or 0 when id is not being worked on
 *   FCALL_RO job_count 3 q:ready q:running q:jobs -> [ready, running, payloads]
 */
#include "keel.h"

KEEL_FUNCTION(job_push) {
    keel_buf ready = keel_key(0), jobs = keel_key(1);
    keel_buf id = keel_arg(0), payload = keel_arg(1);
    if (keel_hset(jobs, id, payload) == 0) keel_abort_str("ERR job exists");
    keel_reply_int(keel_rpush(ready, id));
}

KEEL_FUNCTION(job_take) {
    keel_buf ready = keel_key(0), running = keel_key(1), jobs = keel_key(2);
    keel_value id = KEEL_CALL(keel_str("LMOVE"), ready, running, keel_str("LEFT"), keel_str("RIGHT"));
    if (id.type != '$') {
        keel_reply_nil();
        return;
    }
    int found;
    keel_buf payload = keel_hget(jobs, id.s, &found);
    if (!found) keel_abort_str("ERR job without payload");
    keel_reply_array(2);
    keel_reply_bulk(id.s.ptr, id.s.len);
    keel_reply_bulk(payload.ptr, payload.len);
}

KEEL_FUNCTION(job_done) {
    keel_buf running = keel_key(0), jobs = keel_key(1), id = keel_arg(0);
    if (KEEL_CALL(keel_str("LREM"), running, keel_str("1"), id).i == 0) {
        keel_reply_int(0);
        return;
    }
    keel_hdel(jobs, id);
    keel_reply_int(1);
}

KEEL_FUNCTION(job_count) {
    keel_reply_array(3);
    keel_reply_int(keel_llen(keel_key(0)));
    keel_reply_int(keel_llen(keel_key(1)));
    keel_reply_int(keel_hlen(keel_key(2)));
}
