package udf

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/engine"
)

// The effects of one call travel through the log as one record, so that
// recovery and followers apply them together and never run guest code:
//
//	u8      version: 1 when every command is a SET or a single-key DEL
//	        (all a call could write before keel.call), 2 otherwise
//	uvarint command count
//	per command: uvarint argc, then per argument uvarint length + bytes
//
// Version 2 has the same layout; its commands are any write keel.call
// allows (HSET, LPUSH, ZADD, ... collections.go). A call that writes only
// strings still writes version 1, so a node that knows only version 1
// reads it, and DecodeEffects reads both.
//
// The replica stores the record in an entry of its own kind (one a client
// cannot forge) and applies it with ApplyEffects.
const (
	effectsVersion        = 1
	effectsVersionCommand = 2
)

// effectsCommandsMax bounds the commands a record may claim, so a corrupt
// count cannot make the decoder allocate without end.
const effectsCommandsMax = 1 << 20

// EncodeEffects serialises a Result's effects.
func EncodeEffects(effects [][][]byte) []byte {
	return AppendEffects(nil, effects)
}

// AppendEffects appends EncodeEffects(effects) to dst, so that a caller
// building a larger record (the replica's effects entry) copies it once.
func AppendEffects(dst []byte, effects [][][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, argv := range effects {
		n += binary.MaxVarintLen64
		for _, a := range argv {
			n += binary.MaxVarintLen64 + len(a)
		}
	}
	out := slices.Grow(dst, n)
	version := byte(effectsVersion)
	for _, argv := range effects {
		if !isSetOrDel(argv) {
			version = effectsVersionCommand
			break
		}
	}
	out = append(out, version)
	out = binary.AppendUvarint(out, uint64(len(effects)))
	for _, argv := range effects {
		out = binary.AppendUvarint(out, uint64(len(argv)))
		for _, a := range argv {
			out = binary.AppendUvarint(out, uint64(len(a)))
			out = append(out, a...)
		}
	}
	return out
}

// DecodeEffects is EncodeEffects' inverse. The arguments alias rec.
func DecodeEffects(rec []byte) ([][][]byte, error) {
	if len(rec) == 0 || (rec[0] != effectsVersion && rec[0] != effectsVersionCommand) {
		return nil, errors.New("udf: effects record: unknown version")
	}
	p := rec[1:]
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errors.New("udf: effects record: truncated")
		}
		p = p[n:]
		return v, nil
	}
	count, err := uv()
	if err != nil {
		return nil, err
	}
	if count > effectsCommandsMax {
		return nil, errors.Newf("udf: effects record: %d commands", count)
	}
	out := make([][][]byte, 0, count)
	for i := uint64(0); i < count; i++ {
		argc, err := uv()
		if err != nil {
			return nil, err
		}
		if argc == 0 || argc > uint64(len(p)) {
			return nil, errors.Newf("udf: effects record: command %d has %d arguments", i, argc)
		}
		argv := make([][]byte, argc)
		for j := range argv {
			l, err := uv()
			if err != nil {
				return nil, err
			}
			if l > uint64(len(p)) {
				return nil, errors.New("udf: effects record: truncated argument")
			}
			argv[j], p = p[:l], p[l:]
		}
		out = append(out, argv)
	}
	if len(p) != 0 {
		return nil, errors.Newf("udf: effects record: %d trailing bytes", len(p))
	}
	return out, nil
}

// ApplyEffects runs effects against db at nowMillis (the entry's time),
// in order. Effects were built to succeed on the state the call read; one
// that fails means the log and the keyspace disagree, which the replica
// must treat as fatal rather than serve.
func ApplyEffects(db *engine.DB, nowMillis int64, effects [][][]byte) error {
	var w engine.Discard
	for i, argv := range effects {
		w.Err = ""
		db.Exec(nowMillis, argv, &w)
		if w.Err != "" {
			return errors.AssertionFailedf("udf: effect %d (%s) failed: %s", i, errors.Safe(string(argv[0])), w.Err)
		}
	}
	return nil
}
