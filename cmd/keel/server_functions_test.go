package main

import (
	"strings"
	"testing"
)

func TestFunctionDirectives(t *testing.T) {
	o, err := parseServerArgs([]string{"--function-memory-limit", "1mb", "--function-fuel=1000"})
	if err != nil {
		t.Fatal(err)
	}
	if o.functions.memoryPages != 16 || o.functions.fuel != 1000 {
		t.Fatalf("got %+v", o.functions)
	}
	for _, bad := range [][]string{
		{"--function-memory-limit", "1kb"},
		{"--function-memory-limit", "5gb"},
		{"--function-fuel", "0"},
		{"--function-fuel", "lots"},
	} {
		if _, err := parseServerArgs(bad); err == nil || !strings.Contains(err.Error(), "function-") {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if cfg := (functionOptions{}).config(t.TempDir(), false); cfg == nil {
		t.Fatal("no config")
	}
}
