package main

import "testing"

// TestAnswerTakesWholeCommandsOnly: the toy servers answer each complete
// command (SET +OK, PING +PONG, anything else an error) and leave a
// partial one for the next read.
func TestAnswerTakesWholeCommandsOnly(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nping\r\n*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nk")
	out, used := answer(nil, in)
	if want := "+OK\r\n+PONG\r\n-ERR unknown command\r\n"; string(out) != want {
		t.Fatalf("replies %q, want %q", out, want)
	}
	if want := len(in) - len("*3\r\n$3\r\nSET\r\n$1\r\nk"); used != want {
		t.Fatalf("used %d bytes, want %d (the partial SET left)", used, want)
	}
	if out, used := answer(nil, []byte("*1\r\n$4\r\nPI")); len(out) != 0 || used != 0 {
		t.Fatalf("a partial command answered %q, used %d", out, used)
	}
}
