// Package sdk is the keel guest SDK for Go: import it in a program built
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, export functions with
// //go:wasmexport, and load the .wasm with FUNCTION LOAD or
// `keel function load`.
//
//	package main
//
//	import "github.com/keel-db/keel/udf/sdk"
//
//	//go:wasmexport incr_by
//	func incrBy() {
//		n, ok := sdk.ArgInt(0)
//		if !ok {
//			sdk.Abort("ERR increment is not an integer")
//		}
//		sdk.ReplyInt(sdk.IncrBy(sdk.Key(0), n))
//	}
//
//	func main() {}
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o lib.wasm .
//
// Each call runs in a fresh instance (keel calls _initialize, then the
// function), so package variables start from their initial values every
// time. Writes are buffered by keel and applied when the function returns;
// Abort, a panic or any trap discards them all. The ABI is specified in
// docs/functions.md; this package and udf/sdk/c/keel.h are thin layers
// over it.
//
// Go guests are convenient but heavy (about 1.9 MB, and a few milliseconds
// to start the Go runtime on every call); for hot paths prefer the C SDK.
//
// May import: the standard library only (it runs inside the guest).
package sdk
