// Command counter is the Go version of testdata/functions/counter.c:
//
//	FCALL incr_by 1 <key> <n>  ->  the key's new value
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

func main() {}
