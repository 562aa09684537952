package engine

import (
	"strconv"
	"strings"
	"testing"
)

func TestZSetCompare(t *testing.T) {
	long := strings.Repeat("m", 65)
	runCompare(t, map[string]string{
		"add": `
			ZADD z 1 a 2 b 3 c
			ZADD z 1 a
			ZADD z 5 a
			ZADD z CH 5 a 6 b 7 d
			ZRANGE z 0 -1 WITHSCORES
			ZADD z NX 100 a 8 e
			ZADD z XX 100 a 9 f
			ZADD z GT 50 a 200 b
			ZADD z LT 60 a 1 b
			ZADD z GT CH 1 a 300 b
			ZRANGE z 0 -1 WITHSCORES
			ZADD z INCR 10 a
			ZADD z INCR NX 10 a
			ZADD z INCR XX 10 nope
			ZADD z INCR GT -1 a
			ZADD z INCR 1 a 2 b
			ZADD z NX XX 1 a
			ZADD z GT LT 1 a
			ZADD z GT NX 1 a
			ZADD z 1
			ZADD z 1 a 2
			ZADD z x a
			ZADD z nan a
			ZADD z inf a -inf b +inf c
			ZRANGE z 0 -1 WITHSCORES
			ZADD z INCR -inf a
			ZADD z 1e400 a
			ZADD z 1e-400 a
			ZADD z " 1" a
			ZADD z 0x10 hex
			ZSCORE z hex
			ZADD z -0 neg0
			ZSCORE z neg0
			ZADD nokey XX 1 a
			ZADD nokey XX INCR 1 a
			EXISTS nokey
			ZINCRBY z 5 newm
			ZINCRBY z 2.5 newm
			ZINCRBY z x newm
			ZINCRBY z nx newm
			ZSCORE z newm
			ZSCORE z nope
			ZSCORE nokey a
			ZMSCORE z newm nope a
			ZMSCORE nokey a b
			ZCARD z
			ZCARD nokey
			resp3: ZSCORE z newm
			resp3: ZADD z INCR 1 newm
			resp3: ZMSCORE z newm nope
		`,
		"encoding": `
			ZADD z 1 a
			OBJECT ENCODING z
			ZADD z 2 ` + long + `
			OBJECT ENCODING z
			ZADD y 1 ` + long + `
			OBJECT ENCODING y
			ZADD big` + manyArgs(129, "%d m%d") + `
			OBJECT ENCODING big
			ZADD lp` + manyArgs(128, "%d m%d") + `
			OBJECT ENCODING lp
			ZADD lp 1 one-more
			OBJECT ENCODING lp
			ZRANGESTORE d big 0 5
			OBJECT ENCODING d
			ZRANGESTORE d big 0 -1
			OBJECT ENCODING d
			ZUNIONSTORE u 1 big
			OBJECT ENCODING u
			ZREMRANGEBYRANK big 0 100
			OBJECT ENCODING big
			ZUNIONSTORE u 1 big
			OBJECT ENCODING u
		`,
		"ranges": `
			ZADD z 1 a 2 b 3 c 4 d 5 e
			ZRANGE z 0 -1
			ZRANGE z 1 2 WITHSCORES
			ZRANGE z -2 -1 REV
			ZRANGE z 0 0 REV WITHSCORES
			ZRANGE z 10 20
			ZRANGE z 2 BYSCORE
			ZRANGE z 2 4 BYSCORE
			ZRANGE z (2 4 BYSCORE
			ZRANGE z (2 (4 BYSCORE WITHSCORES
			ZRANGE z -inf +inf BYSCORE LIMIT 1 2
			ZRANGE z 4 2 BYSCORE REV
			ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES
			ZRANGE z 2 4 BYSCORE LIMIT -1 2
			ZRANGE z 2 4 BYSCORE LIMIT 0 -1
			ZRANGE z 2 4 BYSCORE LIMIT 0 0
			ZRANGE z 2 4 BYSCORE LIMIT 10 1
			ZRANGE z 0 -1 LIMIT 0 1
			ZRANGE z - + BYLEX WITHSCORES
			ZRANGE z x y BYSCORE BYLEX
			ZRANGE z 0 1 REV REV
			ZRANGE z a b BYSCORE
			ZRANGE z ( 3 BYSCORE
			ZRANGE z "" 3 BYSCORE
			ZRANGE z "  1" 3 BYSCORE
			ZRANGE z "1 " 3 BYSCORE
			ZRANGE z nan 3 BYSCORE
			ZRANGE z 0 -1 BOGUS
			ZRANGE z 0 -1 LIMIT 1
			ZRANGE nokey 0 -1
			ZREVRANGE z 0 1 WITHSCORES
			ZREVRANGE z 0 1 REV
			ZRANGEBYSCORE z 2 4 WITHSCORES LIMIT 1 1
			ZRANGEBYSCORE z 2 4 BYSCORE
			ZREVRANGEBYSCORE z 4 2
			ZREVRANGEBYSCORE z 2 4
			ZCOUNT z 2 4
			ZCOUNT z (2 (4
			ZCOUNT z -inf +inf
			ZCOUNT z 5 1
			ZCOUNT z x 1
			ZCOUNT nokey 1 2
			ZRANK z c
			ZRANK z nope
			ZRANK nokey a
			ZREVRANK z c
			resp3: ZRANGE z 0 1 WITHSCORES
			resp3: ZRANGE nokey 0 1 WITHSCORES
			resp3: ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 0 2
		`,
		"lex": `
			ZADD l 0 a 0 b 0 c 0 d 0 e 0 f
			ZRANGEBYLEX l - +
			ZRANGEBYLEX l [b (e
			ZRANGEBYLEX l (b [e LIMIT 1 2
			ZREVRANGEBYLEX l + -
			ZREVRANGEBYLEX l [e (b
			ZRANGE l [c + BYLEX
			ZRANGE l + [c BYLEX REV LIMIT 0 2
			ZLEXCOUNT l - +
			ZLEXCOUNT l [b [d
			ZLEXCOUNT l (b (d
			ZLEXCOUNT l b d
			ZLEXCOUNT l +x -
			ZRANGEBYLEX l a b
			ZLEXCOUNT nokey - +
			ZREMRANGEBYLEX l [b (d
			ZRANGE l 0 -1
			ZREMRANGEBYLEX l - +
			EXISTS l
		`,
		"remove": `
			ZADD z 1 a 2 b 3 c 4 d 5 e 6 f
			ZREM z a nope
			ZREM z nope
			ZREM nokey a
			ZREMRANGEBYRANK z 0 0
			ZREMRANGEBYRANK z -1 -1
			ZREMRANGEBYRANK z 10 20
			ZREMRANGEBYRANK z x 1
			ZRANGE z 0 -1
			ZREMRANGEBYSCORE z (3 4
			ZREMRANGEBYSCORE z 10 20
			ZREMRANGEBYSCORE z x 1
			ZRANGE z 0 -1 WITHSCORES
			ZREM z c e
			EXISTS z
			ZREMRANGEBYSCORE nokey 1 2
			ZREMRANGEBYRANK nokey 0 1
		`,
		"pop": `
			ZADD z 1 a 2 b 3 c 4 d
			ZPOPMIN z
			ZPOPMAX z
			ZPOPMIN z 0
			ZPOPMIN z 10
			EXISTS z
			ZPOPMIN nokey
			ZPOPMIN nokey 2
			ZPOPMAX z -1
			ZPOPMAX z x
			ZPOPMAX z 1 2
			ZADD z 1 a 2 b 3 c
			resp3: ZPOPMIN z
			resp3: ZPOPMIN z 1
			ZADD y 5 y1
			ZMPOP 2 nokey z MIN
			ZMPOP 2 nokey z MAX COUNT 5
			ZMPOP 1 nokey MIN
			ZMPOP 2 y nokey MIN COUNT 1
			ZMPOP 0 z MIN
			ZMPOP x z MIN
			ZMPOP 3 z y MIN
			ZMPOP 1 z MIDDLE
			ZMPOP 1 z MIN COUNT 0
			ZMPOP 1 z MIN COUNT 1 COUNT 1
			SET s v
			ZMPOP 2 s z MIN
			ZADD z 1 a
			ZMPOP 2 z s MIN
			resp3: ZMPOP 1 nokey MIN
		`,
		"algebra": `
			ZADD a 1 x 2 y 3 z
			ZADD b 10 y 20 z 30 w
			SADD s x w
			ZUNION 2 a b
			ZUNION 2 a b WITHSCORES
			ZUNION 2 a b WEIGHTS 2 0.5 WITHSCORES
			ZUNION 2 a b AGGREGATE MIN WITHSCORES
			ZUNION 2 a b AGGREGATE MAX WITHSCORES
			ZUNION 3 a b s WITHSCORES
			ZUNION 2 a nokey WITHSCORES
			ZINTER 2 a b WITHSCORES
			ZINTER 2 a b AGGREGATE MAX WEIGHTS 1 2 WITHSCORES
			ZINTER 2 a a WITHSCORES
			ZINTER 2 a s WITHSCORES
			ZINTER 2 a nokey
			ZDIFF 2 a b WITHSCORES
			ZDIFF 2 b a
			ZDIFF 1 a
			ZDIFF 2 a a
			ZDIFF 2 a b WEIGHTS 1 2
			ZUNIONSTORE d 2 a b
			ZRANGE d 0 -1 WITHSCORES
			ZINTERSTORE d 2 a b WEIGHTS 1 -1
			ZRANGE d 0 -1 WITHSCORES
			ZDIFFSTORE d 2 a b
			ZRANGE d 0 -1 WITHSCORES
			ZINTERSTORE d 2 a nokey
			EXISTS d
			ZINTERCARD 2 a b
			ZINTERCARD 2 a b LIMIT 1
			ZINTERCARD 1 a LIMIT 0
			ZINTERCARD 0 a
			ZINTERCARD x a
			ZINTERCARD 2 a
			ZINTERCARD 1 a LIMIT -1
			ZINTERCARD 1 a WITHSCORES
			ZUNION 0 a
			ZUNION -1 a
			ZUNION 3 a b
			ZUNIONSTORE d 0 a
			ZUNION 2 a b WEIGHTS 1
			ZUNION 2 a b WEIGHTS 1 x
			ZUNION 2 a b AGGREGATE avg
			ZUNIONSTORE d 2 a b WITHSCORES
			SET str v
			ZUNION 2 a str
			ZUNIONSTORE str 1 a
			TYPE str
			ZADD inf 1 p
			ZADD inf2 inf p
			ZADD ninf -inf p
			ZUNION 2 inf2 ninf WITHSCORES
			ZUNION 2 inf2 inf WEIGHTS 0 1 WITHSCORES
			resp3: ZUNION 2 a b WITHSCORES
			resp3: ZINTER 2 a b
		`,
		"rangestore": `
			ZADD z 1 a 2 b 3 c 4 d
			ZRANGESTORE d z 0 1
			ZRANGE d 0 -1 WITHSCORES
			ZRANGESTORE d z 2 3 BYSCORE REV
			ZRANGESTORE d z 3 2 BYSCORE REV
			ZRANGE d 0 -1 WITHSCORES
			ZRANGESTORE d z [b [c BYLEX
			ZRANGESTORE d z 10 20
			EXISTS d
			ZRANGESTORE d z 0 1 WITHSCORES
			ZRANGESTORE d nokey 0 1
			ZRANGESTORE z z 1 2
			ZRANGE z 0 -1 WITHSCORES
		`,
		"randmember": `
			ZRANDMEMBER nokey
			ZRANDMEMBER nokey 2
			ZADD z 1 a 2 b 3 c
			ZRANDMEMBER z 0
			ZRANDMEMBER z 3 WITHSCORES
			ZRANDMEMBER z 5 WITHSCORES
			resp3: ZRANDMEMBER z 5 WITHSCORES
			ZRANDMEMBER z 1 2
			ZRANDMEMBER z x
			ZRANDMEMBER z -9223372036854775807 WITHSCORES
			skip: ZRANDMEMBER z
			skip: ZRANDMEMBER z -4 WITHSCORES
		`,
		"scan": `
			ZSCAN nokey 0
			ZADD z 1 a 2.5 b 3 ab
			ZSCAN z 0
			ZSCAN z 0 MATCH a*
			ZSCAN z x
		`,
		"errors": `
			SET s v
			ZADD s 1 a
			ZSCORE s a
			ZMSCORE s a
			ZCARD s
			ZCOUNT s 1 2
			ZLEXCOUNT s - +
			ZRANK s a
			ZRANGE s 0 1
			ZRANGEBYSCORE s 0 1
			ZREM s a
			ZREMRANGEBYRANK s 0 1
			ZPOPMIN s
			ZRANDMEMBER s
			ZSCAN s 0
			ZINCRBY s 1 a
			ZRANK z
			ZADD
			ZRANGE z 0
		`,
		"large": `
			ZADD big` + manyArgs(400, "%d member:%d") + `
			ZCARD big
			ZSCORE big member:123
			ZRANK big member:123
			ZREVRANK big member:123
			ZRANGE big 100 105 WITHSCORES
			ZRANGE big 300 310 BYSCORE WITHSCORES
			ZRANGE big (300 310 BYSCORE REV LIMIT 2 3
			ZCOUNT big 100 (200
			ZADD big 1000 member:5
			ZRANK big member:5
			ZINCRBY big -2000 member:6
			ZRANGE big 0 2 WITHSCORES
			ZREM big member:7 member:8
			ZREMRANGEBYSCORE big 50 60
			ZREMRANGEBYRANK big 10 20
			ZCARD big
			ZPOPMIN big 3
			ZPOPMAX big 2
			ZADD same` + manyArgs(300, "0 m%d") + `
			ZLEXCOUNT same [m1 [m2
			ZRANGEBYLEX same [m29 (m3
			ZREMRANGEBYLEX same (m5 [m6
			ZCARD same
			ZUNIONSTORE u 2 big same WEIGHTS 2 1
			ZCARD u
			ZRANGE u 0 4 WITHSCORES
			ZINTERCARD 2 big same
		`,
	})
}

// TestZRankWithScore: ZRANK's WITHSCORE is Redis 7.2's (7.0 has not
// got it), so the replies are written out here.
func TestZRankWithScore(t *testing.T) {
	db := newTestDB()
	exec(db, 1, "ZADD", "z", "1", "a", "2.5", "b")
	for _, c := range []struct{ cmd, want string }{
		{"ZRANK z b WITHSCORE", `[:1 ,2.5]`},
		{"ZREVRANK z b WITHSCORE", `[:0 ,2.5]`},
		{"ZRANK z x WITHSCORE", `(nil-array)`},
		{"ZRANK nokey x WITHSCORE", `(nil-array)`},
		{"ZRANK z b WITHSCORES", `-ERR syntax error`},
		{"ZRANK z b WITHSCORE x", `-ERR wrong number of arguments for 'zrank' command`},
	} {
		args, _ := splitArgs(c.cmd)
		if got := exec(db, 1, args...); got != c.want {
			t.Errorf("%s: %s, want %s", c.cmd, got, c.want)
		}
	}
}

// TestZSetPackScores: a small sorted set keeps integral scores in a byte
// or two and others in eight; every score reads back exactly, in order.
func TestZSetPackScores(t *testing.T) {
	db := newTestDB()
	scores := []string{"0", "1", "-1", "42", "-4096", "9007199254740992", "-9007199254740992",
		"9007199254740994", "0.5", "-0.25", "1e300", "-1e300", "inf", "-inf", "123456789.5", "-0"}
	want := map[string]string{"-0": ",0", "inf": ",+Inf", "-inf": ",-Inf"}
	for i, s := range scores {
		exec(db, 1, "ZADD", "z", s, "m"+strconv.Itoa(i))
	}
	if got := exec(db, 1, "OBJECT", "ENCODING", "z"); got != `"listpack"` {
		t.Fatal(got)
	}
	for i, s := range scores {
		w, ok := want[s]
		if !ok {
			f, _ := strconv.ParseFloat(s, 64)
			w = "," + strconv.FormatFloat(f, 'g', -1, 64)
		}
		if got := exec(db, 1, "ZSCORE", "z", "m"+strconv.Itoa(i)); got != w {
			t.Errorf("score %s: %s, want %s", s, got, w)
		}
	}
	got := exec(db, 1, "ZRANGE", "z", "0", "-1")
	if !strings.HasPrefix(got, `["m13" "m11" "m6" "m4" "m2" "m9"`) || !strings.HasSuffix(got, `"m5" "m7" "m10" "m12"]`) {
		t.Fatalf("order %s", got)
	}
	v := db.valOf(db.find([]byte("z")))
	if err := checkPack(TypeZSet, v); err != nil {
		t.Fatal(err)
	}
	if len(v) > 16*10 {
		t.Fatalf("a pack of %d bytes for 16 members", len(v))
	}
}
