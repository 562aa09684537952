// transfer: FCALL transfer 2 <from> <to> <amount>  ->  1, or
// "ERR insufficient funds" with nothing written.
#include "keel.h"

KEEL_FUNCTION(transfer) {
    if (keel_key_count() != 2 || keel_arg_count() != 1) keel_abort_str("ERR usage: FCALL transfer 2 from to amount");
    keel_buf from = keel_key(0), to = keel_key(1);
    int64_t amount;
    if (!keel_arg_int(0, &amount) || amount <= 0) keel_abort_str("ERR amount must be a positive integer");
    if (keel_get_int(from) < amount) keel_abort_str("ERR insufficient funds");
    keel_incrby(from.ptr, from.len, -amount);
    keel_incrby(to.ptr, to.len, amount);
    keel_reply_int(1);
}

// balance: FCALL_RO balance 1 <account>  ->  its balance (0 if none).
KEEL_FUNCTION(balance) {
    keel_reply_int(keel_get_int(keel_key(0)));
}
