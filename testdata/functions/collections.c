/*
 * collections: engine commands on hashes, lists, sets and sorted sets from a
 * function (keel.call), and a leaderboard built on them.
 *
 *   FCALL call 1 k HSET k f v          -> runs any command keel.call allows on the
 *                                         declared keys and replies with its reply
 *   FCALL call_abort 1 k LPUSH k x     -> runs it, then aborts: nothing is written
 *   FCALL lb_add 1 board player 5      -> [new score, rank from the top (0 = first)]
 *   FCALL_RO lb_top 1 board 3          -> [player, score, ...] of the 3 best
 */
#include "keel.h"

/* The call's arguments as an argv. */
static const keel_buf *args_argv(int32_t *argc) {
    *argc = keel_arg_count();
    keel_buf *argv = (keel_buf *)keel_alloc(*argc * (int32_t)sizeof(keel_buf));
    for (int32_t i = 0; i < *argc; i++) argv[i] = keel_arg(i);
    return argv;
}

KEEL_FUNCTION(call) {
    int32_t argc;
    const keel_buf *argv = args_argv(&argc);
    keel_reply_value(keel_call(argc, argv));
}

KEEL_FUNCTION(call_abort) {
    int32_t argc;
    const keel_buf *argv = args_argv(&argc);
    keel_call(argc, argv);
    keel_abort_str("ERR aborted after the command");
}

KEEL_FUNCTION(lb_add) {
    keel_buf board = keel_key(0), player = keel_arg(0);
    int64_t points;
    if (!keel_arg_int(1, &points)) keel_abort_str("ERR points is not an integer");
    keel_buf score = keel_zincrby(board, keel_int_buf(points), player);
    keel_reply_array(2);
    keel_reply_bulk(score.ptr, score.len);
    keel_reply_int(keel_zrevrank(board, player));
}

KEEL_FUNCTION(lb_top) {
    keel_buf board = keel_key(0);
    int64_t n;
    if (!keel_arg_int(0, &n) || n < 1) keel_abort_str("ERR count must be a positive integer");
    keel_reply_value(KEEL_CALL(keel_str("ZREVRANGE"), board, keel_str("0"), keel_int_buf(n - 1), keel_str("WITHSCORES")));
}
