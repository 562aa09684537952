package sdk

import (
	"encoding/binary"
	"testing"
)

func TestDecodeReply(t *testing.T) {
	var b []byte
	b = append(b, '*')
	b = binary.LittleEndian.AppendUint32(b, 4)
	b = append(b, ':')
	b = binary.LittleEndian.AppendUint64(b, ^uint64(6))
	b = append(b, '$', 2, 0, 0, 0, 'h', 'i')
	b = append(b, '_')
	b = append(b, '-', 3, 0, 0, 0, 'E', 'R', 'R')
	v, err := DecodeReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != Array || len(v.Elems) != 4 || v.Elems[0].Int != -7 || string(v.Elems[1].Str) != "hi" ||
		v.Elems[2].Kind != Nil || v.Elems[3].Kind != Err || string(v.Elems[3].Str) != "ERR" {
		t.Fatalf("%+v", v)
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeReply(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	if _, err := DecodeReply([]byte{'*', 255, 255, 255, 255}); err == nil {
		t.Fatal("a huge count decoded")
	}
	if got := EncodeArgv([]byte("HGET"), []byte("k")); string(got) != "\x04\x00\x00\x00HGET\x01\x00\x00\x00k" {
		t.Fatalf("%q", got)
	}
}
