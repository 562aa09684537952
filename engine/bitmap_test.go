package engine

import "testing"

func TestBitmapCompare(t *testing.T) {
	runCompare(t, map[string]string{
		"setbit-getbit": `
			SETBIT b 7 1
			GET b
			SETBIT b 7 0
			SETBIT b 100 1
			STRLEN b
			GETBIT b 100
			GETBIT b 99
			GETBIT b 100000
			GETBIT nokey 3
			SETBIT b -1 1
			SETBIT b x 1
			SETBIT b 1 2
			SETBIT b 1 x
			SETBIT b 4294967296 1
			GETBIT b 4294967296
			GETBIT b x
			OBJECT ENCODING b
			SET s abc
			SETBIT s 1 0
			GET s
			OBJECT ENCODING s
			HSET h f v
			SETBIT h 1 1
			GETBIT h 1
		`,
		"bitcount": `
			SET s foobar
			BITCOUNT s
			BITCOUNT s 0 0
			BITCOUNT s 1 1
			BITCOUNT s -2 -1
			BITCOUNT s 1 1 BYTE
			BITCOUNT s 5 30 BIT
			BITCOUNT s -10 -1 BIT
			BITCOUNT s 0 -1 BIT
			BITCOUNT s -1 -2
			BITCOUNT s 10 20
			BITCOUNT s 0
			BITCOUNT s 0 1 bogus
			BITCOUNT s x 1
			BITCOUNT nokey
			BITCOUNT nokey 0
			BITCOUNT nokey x y
			SET e ""
			BITCOUNT e 0 -1
		`,
		"bitpos": `
			SET s "\xff\xf0\x00"
			BITPOS s 0
			BITPOS s 1 2
			BITPOS s 1 0 -1
			BITPOS s 0 0 0
			BITPOS s 0 0 1
			BITPOS s 0 1
			BITPOS s 1 2 -1
			BITPOS s 0 5 BIT
			BITPOS s 0 5 10 BIT
			BITPOS s 1 12 20 BIT
			BITPOS s 0 20 23 BIT
			BITPOS s 1 17 23 BIT
			BITPOS s 0 -1 BIT
			BITPOS s 1 -9 -1 BIT
			SET f "\xff\xff"
			BITPOS f 0
			BITPOS f 0 0 -1
			BITPOS f 0 1 BIT
			BITPOS f 0 3 BIT
			BITPOS f 1 2 1
			BITPOS nokey 0
			BITPOS nokey 1
			BITPOS s 2
			BITPOS s x
			BITPOS s 1 x
			BITPOS s 1 0 x
			BITPOS s 1 0 1 bogus
			SET z ""
			BITPOS z 0
			BITPOS z 1
		`,
		"bitop": `
			SET a "\xf0\x0f"
			SET b "\xff"
			BITOP AND d a b
			GET d
			BITOP OR d a b
			GET d
			BITOP XOR d a b nokey
			GET d
			BITOP NOT d a
			GET d
			BITOP NOT d a b
			BITOP NAND d a b
			BITOP AND d nokey nokey2
			EXISTS d
			HSET h f v
			BITOP AND d a h
			BITOP OR h a
			TYPE h
			OBJECT ENCODING h
		`,
		"bitfield": `
			BITFIELD bf SET i8 0 100 GET i8 0
			BITFIELD bf INCRBY i8 0 100
			BITFIELD bf OVERFLOW SAT INCRBY i8 0 100
			BITFIELD bf OVERFLOW FAIL INCRBY i8 0 100
			BITFIELD bf OVERFLOW WRAP INCRBY i8 0 -300
			BITFIELD bf SET u4 #1 15 GET u4 #1 GET u8 0
			BITFIELD bf SET u8 0 -1 GET u8 0
			BITFIELD bf OVERFLOW SAT SET u8 0 300 GET u8 0
			BITFIELD bf OVERFLOW SAT INCRBY u8 0 -1000 GET u8 0
			BITFIELD bf SET i64 8 -1 GET i64 8 GET u63 8
			BITFIELD bf OVERFLOW WRAP INCRBY i64 8 -9223372036854775808
			BITFIELD bf OVERFLOW SAT INCRBY i64 8 -9223372036854775808
			BITFIELD bf GET i5 3 GET u3 100
			BITFIELD bf SET u64 0 1
			BITFIELD bf SET i65 0 1
			BITFIELD bf SET I8 0 1
			BITFIELD bf SET i0 0 1
			BITFIELD bf SET i8 -1 1
			BITFIELD bf SET i8 #x 1
			BITFIELD bf SET i8 0 x
			BITFIELD bf OVERFLOW maybe
			BITFIELD bf BOGUS
			BITFIELD bf GET i8
			BITFIELD bf
			BITFIELD nokey GET u8 0
			BITFIELD_RO bf GET i8 0 GET u4 4
			BITFIELD_RO bf SET i8 0 1
			BITFIELD_RO nokey GET u8 0
			BITFIELD fresh OVERFLOW FAIL SET u2 0 7
			GET fresh
			HSET h f v
			BITFIELD h GET u8 0
			BITFIELD h SET u8 0 1
		`,
		"lcs": `
			SET a ohmytext
			SET b mynewtext
			LCS a b
			LCS a b LEN
			LCS a b IDX
			LCS a b IDX MINMATCHLEN 4
			LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN
			LCS a b IDX WITHMATCHLEN
			LCS a b LEN IDX
			LCS a b MINMATCHLEN x
			LCS a b BOGUS
			LCS a nokey
			LCS nokey nokey2 LEN
			HSET h f v
			LCS a h
			SET c abcabc
			SET d cbacba
			LCS c d IDX WITHMATCHLEN
			resp3: LCS a b IDX
		`,
	})
}

// TestStringEncoding: OBJECT ENCODING of strings as Redis reports them.
func TestStringEncoding(t *testing.T) {
	runCompare(t, map[string]string{
		"encodings": `
			SET i 12345
			OBJECT ENCODING i
			SET neg -9223372036854775808
			OBJECT ENCODING neg
			SET big 12345678901234567890123
			OBJECT ENCODING big
			SET lead 0123
			OBJECT ENCODING lead
			SET e short
			OBJECT ENCODING e
			SET r aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
			OBJECT ENCODING r
			SET r44 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
			OBJECT ENCODING r44
			APPEND e x
			OBJECT ENCODING e
			APPEND new 12
			OBJECT ENCODING new
			SETRANGE i 0 9
			OBJECT ENCODING i
			SETRANGE nr 0 1
			OBJECT ENCODING nr
			INCR counter
			OBJECT ENCODING counter
			INCRBYFLOAT fl 1.5
			INCRBYFLOAT fl 1.5
			OBJECT ENCODING fl
			SET c 7
			COPY c c2
			OBJECT ENCODING c2
			COPY e e2
			OBJECT ENCODING e2
			RENAME e e3
			OBJECT ENCODING e3
			OBJECT REFCOUNT c
			OBJECT REFCOUNT e3
			SET bigint 123456
			OBJECT REFCOUNT bigint
			OBJECT ENCODING nokey
			OBJECT IDLETIME e3
			OBJECT FREQ e3
			OBJECT HELP
			OBJECT BOGUS x
			OBJECT ENCODING
			OBJECT ENCODING a b
			OBJECT
			OBJECT HELP x
		`,
	})
}
