/*
 * collections: engine commands on hashes, lists, sets and sorted sets from a
 * function (keel.call), and a leaderboard built on them.
 *
 *   FCALL call 1 k HSET k f v          -> runs any command keel.call allows on the
 *                                         declared keys and replies with its reply
 *   FCALL call_abort 1 k LPUSH k x     -> runs it, then aborts: nothing is written
 *   FCALL lb_add 1 board player 5      -> [new score, rank from the top (0 = first)]
 *   FCALL_RO lb_top 1 board 3          -> [player, score, ...] of the 3 best
 *   FCALL script 2 k1 k2 HSET k1 f v ; kget k2 ; kset k2 v 0 ; LPUSH k2 x
 *                                      -> one reply per step: keel.call for commands,
 *                                         and the string calls as kget k, kset k v ttl_ms,
 *                                         kdel k, kincr k n, kexists k (the tests' mix of both)
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

static int is_word(keel_buf b, const char *w) {
    int32_t n = keel_strlen_(w);
    if (b.len != n) return 0;
    for (int32_t i = 0; i < n; i++)
        if (b.ptr[i] != (uint8_t)w[i]) return 0;
    return 1;
}

KEEL_FUNCTION(script) {
    int32_t argc;
    const keel_buf *argv = args_argv(&argc);
    int32_t steps = argc > 0 ? 1 : 0;
    for (int32_t i = 0; i < argc; i++)
        if (is_word(argv[i], ";")) steps++;
    keel_reply_array(steps);
    for (int32_t i = 0; i < argc;) {
        int32_t j = i;
        while (j < argc && !is_word(argv[j], ";")) j++;
        const keel_buf *a = argv + i;
        int32_t n = j - i;
        int64_t x;
        if (n == 2 && is_word(a[0], "kget")) {
            int found;
            keel_buf v = keel_get_buf(a[1], &found);
            if (found) keel_reply_bulk(v.ptr, v.len); else keel_reply_nil();
        } else if (n == 4 && is_word(a[0], "kset") && keel_parse_int(a[3], &x)) {
            keel_set(a[1].ptr, a[1].len, a[2].ptr, a[2].len, x);
            keel_reply_simple_str("OK");
        } else if (n == 2 && is_word(a[0], "kdel")) {
            keel_reply_int(keel_del(a[1].ptr, a[1].len));
        } else if (n == 3 && is_word(a[0], "kincr") && keel_parse_int(a[2], &x)) {
            keel_reply_int(keel_incrby(a[1].ptr, a[1].len, x));
        } else if (n == 2 && is_word(a[0], "kexists")) {
            keel_reply_int(keel_exists(a[1].ptr, a[1].len));
        } else {
            keel_reply_value(keel_call(n, a));
        }
        i = j + 1;
    }
}
