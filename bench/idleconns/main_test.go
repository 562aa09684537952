package main

import "testing"

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || c.rounds != 3 || c.conns != 5000 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--conns", "9001"}, {"--conns", "0"}, {"--rounds", "0"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
