// Command counter is the Go version of testdata/functions/counter.c:
//
//	FCALL incr_by 1 <key> <n>  ->  the key's new value
//	FCALL score 1 <zset> <member> <n>  ->  [new score, rank] (the Go SDK's typed calls)
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o counter_go.wasm ./testdata/functions/go/counter
package main

import (
	"fmt"

	"github.com/keel-db/keel/udf/sdk"
)

//go:wasmexport incr_by
func incrBy() {
	n, ok := sdk.ArgInt(0)
	if sdk.KeyCount() != 1 || sdk.ArgCount() != 1 || !ok {
		sdk.Abort("ERR usage: FCALL incr_by 1 key n")
	}
	sdk.ReplyInt(sdk.IncrBy(sdk.Key(0), n))
}

// hello replies with a greeting built with fmt, and logs through stdout.
//
//go:wasmexport hello
func hello() {
	fmt.Println("hello from a Go guest")
	sdk.ReplyBulk([]byte(fmt.Sprintf("hello %s at %d", sdk.Arg(0), sdk.Now())))
}

// score adds n to a member's score in a sorted set and replies with
// [new score, rank from the lowest]; a key of another type replies
// Redis's WRONGTYPE as the function's error reply.
//
//go:wasmexport score
func score() {
	n, ok := sdk.ArgInt(1)
	if !ok {
		sdk.Abort("ERR usage: FCALL score 1 key member n")
	}
	key, member := sdk.Key(0), sdk.Arg(0)
	s, err := sdk.ZIncrBy(key, float64(n), member)
	if err != nil {
		sdk.ReplyError(err.Error())
		return
	}
	rank, _, _ := sdk.ZRank(key, member)
	sdk.ReplyArray(2)
	sdk.ReplyInt(int64(s))
	sdk.ReplyInt(rank)
}

func main() {}
