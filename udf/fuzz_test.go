package udf

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: whatever bytes a client uploads, Load either accepts them or
// refuses them with a user error; it never panics or returns an internal
// error. Seeds are the examples.
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 60s ./udf/
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "functions", "*.wasm"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	h, err := NewHost(ctx, NewConfig().WithFuel(100_000))
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close(ctx)
	f.Fuzz(func(t *testing.T, code []byte) {
		lib, err := h.Load(ctx, "fuzz", code, true)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		// Whatever loaded must be callable without hurting the host.
		for _, fn := range lib.Functions() {
			_, err := h.Call(ctx, fn, bs("k"), bs("1"), newFakeStore(), false)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("call %s: internal error: %v", fn, err)
				}
			}
		}
	})
}
