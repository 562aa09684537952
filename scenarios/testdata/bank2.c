// bank2: the transfer library of testdata/functions/transfer.c, plus
// transfer_split, which moves the money in two steps and reads each key
// back between them: a function that touches a key twice, so a call that
// does not see its own writes shows in the bank's totals. Built (and the
// .wasm committed, as testdata/functions does) with:
//   clang --target=wasm32 -O2 -nostdlib -I../../udf/sdk/c -Wl,--no-entry \
//     -Wl,--strip-all -Wl,-z,stack-size=16384 -o bank2.wasm bank2.c
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

// transfer_split: FCALL transfer_split 2 <from> <to> <amount>  ->  1, or
// "ERR insufficient funds" with nothing written. Debits half, reads the
// payer back and sets it to what it read minus the rest, then credits the
// payee twice: every key is read and written more than once.
KEEL_FUNCTION(transfer_split) {
    if (keel_key_count() != 2 || keel_arg_count() != 1) keel_abort_str("ERR usage: FCALL transfer_split 2 from to amount");
    keel_buf from = keel_key(0), to = keel_key(1);
    int64_t amount;
    if (!keel_arg_int(0, &amount) || amount <= 0) keel_abort_str("ERR amount must be a positive integer");
    if (keel_get_int(from) < amount) keel_abort_str("ERR insufficient funds");
    int64_t half = amount / 2;
    keel_incrby(from.ptr, from.len, -half);
    keel_set_int(from, keel_get_int(from) - (amount - half), 0);
    keel_incrby(to.ptr, to.len, half);
    keel_set_int(to, keel_get_int(to) + (amount - half), 0);
    keel_reply_int(1);
}

// balance: FCALL_RO balance 1 <account>  ->  its balance (0 if none).
KEEL_FUNCTION(balance) {
    keel_reply_int(keel_get_int(keel_key(0)));
}
