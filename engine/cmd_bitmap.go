package engine

import (
	"math"
	"math/bits"
)

// Bitmaps are strings: bit 0 is the most significant bit of byte 0, as in
// Redis. Commands that write bits leave the value "raw" (OBJECT ENCODING).

const (
	errBitOffset  = "ERR bit offset is not an integer or out of range"
	errBitValue   = "ERR bit is not an integer or out of range"
	errBitfieldTy = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)

// parseBitOffset is Redis's getBitOffsetFromArgument: a non-negative
// integer whose byte is below proto-max-bulk-len; with hash and bits > 0,
// "#N" means N*bits.
func (db *DB) parseBitOffset(b []byte, hash bool, nbits int) (uint64, bool) {
	useHash := hash && nbits > 0 && len(b) > 0 && b[0] == '#'
	if useHash {
		b = b[1:]
	}
	off, ok := parseInt(b)
	if !ok {
		return 0, false
	}
	if useHash {
		off *= int64(nbits) // wraps on overflow as Redis's does
	}
	if off < 0 || off>>3 >= db.opts.ProtoMaxBulkLen {
		return 0, false
	}
	return uint64(off), true
}

// stringForBits is Redis's lookupStringForBitCommand: the string key,
// created or grown with zero bytes so that bit maxBit exists, writable.
// created reports a new key.
func (db *DB) stringForBits(now int64, key []byte, maxBit uint64, w Writer) (r ref, created, ok bool) {
	r, ok = db.lookupString(now, key, w)
	if !ok {
		return 0, false, false
	}
	need := int(maxBit>>3) + 1
	if r == 0 {
		r = db.add(key, TypeString, nil, 0)
		created = true
	} else {
		r = db.writable(r)
	}
	if n := int(db.rec(r).vlen); n < need {
		clear(db.resizeValue(r, need)[n:])
	}
	db.rec(r).strEnc = strEncRaw
	db.bump(r)
	return r, created, true
}

func cmdSetBit(db *DB, now int64, argv [][]byte, w Writer) {
	off, ok := db.parseBitOffset(argv[2], false, 0)
	if !ok {
		w.WriteError(errBitOffset)
		return
	}
	on, ok := parseInt(argv[3])
	if !ok || on&^1 != 0 {
		w.WriteError(errBitValue)
		return
	}
	r, _, ok := db.stringForBits(now, argv[1], off, w)
	if !ok {
		return
	}
	v := db.valOf(r)
	byteIdx, bit := off>>3, 7-(off&7)
	old := v[byteIdx] >> bit & 1
	v[byteIdx] = v[byteIdx]&^(1<<bit) | byte(on)<<bit
	db.notify("setbit", argv[1])
	w.WriteInt(int64(old))
}

func cmdGetBit(db *DB, now int64, argv [][]byte, w Writer) {
	off, ok := db.parseBitOffset(argv[2], false, 0)
	if !ok {
		w.WriteError(errBitOffset)
		return
	}
	r, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	v := db.valOf(r)
	if off>>3 >= uint64(len(v)) {
		w.WriteInt(0)
		return
	}
	w.WriteInt(int64(v[off>>3] >> (7 - off&7) & 1))
}

// bitRange is BITCOUNT's and BITPOS's start/end handling: byte (or bit,
// with isBit) indexes made absolute and clamped, then (for bits) turned
// into bytes with masks for the partial edge bytes.
type bitRange struct {
	start, end         int64
	firstMask, lastMsk byte
}

func clampBitRange(start, end, strlen int64, isBit bool) bitRange {
	total := strlen
	if isBit {
		total <<= 3
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = 0
	}
	if end >= total {
		end = total - 1
	}
	r := bitRange{start: start, end: end}
	if isBit && start <= end {
		r.firstMask = ^byte(1<<(8-(start&7)) - 1)
		r.lastMsk = byte(1<<(7-(end&7)) - 1)
		r.start, r.end = start>>3, end>>3
	}
	return r
}

func popcount(b []byte) int64 {
	n := 0
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return int64(n)
}

func cmdBitCount(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	v := db.valOf(r)
	var br bitRange
	switch len(argv) {
	case 4, 5:
		start, ok1 := parseInt(argv[2])
		end, ok2 := parseInt(argv[3])
		if !ok1 || !ok2 {
			w.WriteError(errNotInt)
			return
		}
		isBit := false
		if len(argv) == 5 {
			switch {
			case equalFold(argv[4], "bit"):
				isBit = true
			case equalFold(argv[4], "byte"):
			default:
				w.WriteError(errSyntax)
				return
			}
		}
		if start < 0 && end < 0 && start > end {
			w.WriteInt(0)
			return
		}
		br = clampBitRange(start, end, int64(len(v)), isBit)
	case 2:
		br = bitRange{start: 0, end: int64(len(v)) - 1}
	default:
		w.WriteError(errSyntax)
		return
	}
	if br.start > br.end {
		w.WriteInt(0)
		return
	}
	n := popcount(v[br.start : br.end+1])
	if br.firstMask != 0 {
		n -= int64(bits.OnesCount8(v[br.start] & br.firstMask))
	}
	if br.lastMsk != 0 {
		n -= int64(bits.OnesCount8(v[br.end] & br.lastMsk))
	}
	w.WriteInt(n)
}

func cmdBitPos(db *DB, now int64, argv [][]byte, w Writer) {
	bit, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	if bit != 0 && bit != 1 {
		w.WriteError("ERR The bit argument must be 1 or 0.")
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeString, w, true)
	if !ok {
		return
	}
	if r == 0 {
		if bit == 1 {
			w.WriteInt(-1)
		} else {
			w.WriteInt(0)
		}
		return
	}
	v := db.valOf(r)
	total := int64(len(v))
	var br bitRange
	endGiven := false
	switch len(argv) {
	case 4, 5, 6:
		start, ok := parseInt(argv[3])
		if !ok {
			w.WriteError(errNotInt)
			return
		}
		isBit := false
		if len(argv) == 6 {
			switch {
			case equalFold(argv[5], "bit"):
				isBit = true
			case equalFold(argv[5], "byte"):
			default:
				w.WriteError(errSyntax)
				return
			}
		}
		var end int64
		if len(argv) >= 5 {
			if end, ok = parseInt(argv[4]); !ok {
				w.WriteError(errNotInt)
				return
			}
			endGiven = true
		} else if isBit {
			end = total<<3 + 7
		} else {
			end = total - 1
		}
		br = clampBitRange(start, end, total, isBit)
	case 3:
		br = bitRange{start: 0, end: total - 1}
	default:
		w.WriteError(errSyntax)
		return
	}
	if br.start > br.end {
		w.WriteInt(-1)
		return
	}
	// The bits of the range: bytes start..end, less the masked edges.
	firstBit := br.start << 3
	if br.firstMask != 0 {
		firstBit += int64(bits.LeadingZeros8(^br.firstMask))
	}
	lastBit := br.end<<3 + 7
	if br.lastMsk != 0 {
		lastBit -= int64(bits.Len8(br.lastMsk))
	}
	want := byte(bit)
	for p := firstBit; p <= lastBit; {
		c := v[p>>3]
		if bit == 0 {
			c = ^c
		}
		// Clear the bits of this byte before p, then look for a set one.
		c &= 0xff >> (p & 7)
		if c != 0 {
			q := p&^7 + int64(bits.LeadingZeros8(c))
			if q <= lastBit {
				w.WriteInt(q)
				return
			}
			break
		}
		p = p&^7 + 8
	}
	_ = want
	if bit == 1 || endGiven {
		w.WriteInt(-1)
		return
	}
	// No clear bit in the string: the first one past it (Redis treats the
	// string as padded with zeros on the right when no end is given).
	w.WriteInt((br.end + 1) << 3)
}

func cmdBitOp(db *DB, now int64, argv [][]byte, w Writer) {
	const (
		opAnd = iota
		opOr
		opXor
		opNot
	)
	var op int
	switch {
	case equalFold(argv[1], "and"):
		op = opAnd
	case equalFold(argv[1], "or"):
		op = opOr
	case equalFold(argv[1], "xor"):
		op = opXor
	case equalFold(argv[1], "not"):
		op = opNot
	default:
		w.WriteError(errSyntax)
		return
	}
	if op == opNot && len(argv) != 4 {
		w.WriteError("ERR BITOP NOT must be called with a single source key.")
		return
	}
	srcs := make([][]byte, len(argv)-3)
	maxLen := 0
	for i, k := range argv[3:] {
		r := db.lookupRead(now, k)
		if r == 0 {
			continue
		}
		if db.typeOf(r) != TypeString {
			w.WriteError(errWrongType)
			return
		}
		srcs[i] = db.valOf(r)
		maxLen = max(maxLen, len(srcs[i]))
	}
	dst := argv[2]
	old := db.lookup(now, dst)
	if maxLen == 0 {
		if old != 0 {
			db.del(old, "del")
		}
		w.WriteInt(0)
		return
	}
	if int64(maxLen) > db.opts.ProtoMaxBulkLen {
		w.WriteError(errTooBig)
		return
	}
	res := make([]byte, maxLen)
	for j := range res {
		var out byte
		for i, s := range srcs {
			var b byte
			if j < len(s) {
				b = s[j]
			}
			switch {
			case op == opNot:
				out = ^b
			case i == 0:
				out = b
			case op == opAnd:
				out &= b
			case op == opOr:
				out |= b
			case op == opXor:
				out ^= b
			}
		}
		res[j] = out
	}
	r := db.storeValue(dst, old, TypeString, res)
	db.rec(r).strEnc = strEncRaw
	db.notify("set", dst)
	w.WriteInt(int64(maxLen))
}

// BITFIELD.

const (
	bfGet = iota
	bfSet
	bfIncrBy
)

const (
	bfWrap = iota
	bfSat
	bfFail
)

type bitfieldOp struct {
	offset uint64
	i64    int64
	op     int
	ow     int
	bits   int
	signed bool
}

// parseBitfieldType is Redis's getBitfieldTypeFromArgument: i1..i64 or
// u1..u63.
func parseBitfieldType(b []byte) (signed bool, nbits int, ok bool) {
	if len(b) == 0 {
		return false, 0, false
	}
	switch b[0] {
	case 'i':
		signed = true
	case 'u':
	default:
		return false, 0, false
	}
	rest := b[1:]
	for i, c := range rest {
		if c == 0 { // Redis reads the type as a C string
			rest = rest[:i]
			break
		}
	}
	n, ok := parseInt(rest)
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, false
	}
	return signed, int(n), true
}

func getUnsignedBits(p []byte, off uint64, nbits int) uint64 {
	var v uint64
	for j := 0; j < nbits; j++ {
		b := p[off>>3] >> (7 - off&7) & 1
		v = v<<1 | uint64(b)
		off++
	}
	return v
}

func getSignedBits(p []byte, off uint64, nbits int) int64 {
	v := int64(getUnsignedBits(p, off, nbits))
	if nbits < 64 && v&(1<<(nbits-1)) != 0 {
		v |= -1 << nbits
	}
	return v
}

func setUnsignedBits(p []byte, off uint64, nbits int, v uint64) {
	for j := 0; j < nbits; j++ {
		bit := v >> (nbits - 1 - j) & 1
		byteIdx, shift := off>>3, 7-off&7
		p[byteIdx] = p[byteIdx]&^(1<<shift) | byte(bit)<<shift
		off++
	}
}

// checkUnsignedOverflow is Redis's checkUnsignedBitfieldOverflow.
func checkUnsignedOverflow(value uint64, incr int64, nbits int, ow int) (bool, uint64) {
	maxv := uint64(1)<<nbits - 1
	maxIncr := int64(maxv - value)
	minIncr := -int64(value)
	wrap := func() uint64 { return (value + uint64(incr)) &^ (math.MaxUint64 << nbits) }
	if value > maxv || (incr > 0 && incr > maxIncr) {
		switch ow {
		case bfWrap:
			return true, wrap()
		case bfSat:
			return true, maxv
		}
		return true, 0
	}
	if incr < 0 && incr < minIncr {
		switch ow {
		case bfWrap:
			return true, wrap()
		case bfSat:
			return true, 0
		}
		return true, 0
	}
	return false, 0
}

// checkSignedOverflow is Redis's checkSignedBitfieldOverflow.
func checkSignedOverflow(value, incr int64, nbits int, ow int) (bool, int64) {
	maxv := int64(math.MaxInt64)
	if nbits < 64 {
		maxv = 1<<(nbits-1) - 1
	}
	minv := -maxv - 1
	maxIncr := int64(uint64(maxv) - uint64(value))
	minIncr := minv - value
	wrap := func() int64 {
		c := uint64(value) + uint64(incr)
		if nbits < 64 {
			mask := uint64(math.MaxUint64) << nbits
			if c&(1<<(nbits-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		return int64(c)
	}
	if value > maxv || (nbits != 64 && incr > maxIncr) || (value >= 0 && incr > 0 && incr > maxIncr) {
		switch ow {
		case bfWrap:
			return true, wrap()
		case bfSat:
			return true, maxv
		}
		return true, 0
	}
	if value < minv || (nbits != 64 && incr < minIncr) || (value < 0 && incr < 0 && incr < minIncr) {
		switch ow {
		case bfWrap:
			return true, wrap()
		case bfSat:
			return true, minv
		}
		return true, 0
	}
	return false, 0
}

func bitfieldGeneric(db *DB, now int64, argv [][]byte, w Writer, readOnlyCmd bool) {
	var ops []bitfieldOp
	ow := bfWrap
	readonly := true
	var highest uint64
	for j := 2; j < len(argv); j++ {
		rem := len(argv) - j - 1
		var op int
		switch sub := argv[j]; {
		case equalFold(sub, "get") && rem >= 2:
			op = bfGet
		case equalFold(sub, "set") && rem >= 3:
			op = bfSet
		case equalFold(sub, "incrby") && rem >= 3:
			op = bfIncrBy
		case equalFold(sub, "overflow") && rem >= 1:
			j++
			switch t := argv[j]; {
			case equalFold(t, "wrap"):
				ow = bfWrap
			case equalFold(t, "sat"):
				ow = bfSat
			case equalFold(t, "fail"):
				ow = bfFail
			default:
				w.WriteError("ERR Invalid OVERFLOW type specified")
				return
			}
			continue
		default:
			w.WriteError(errSyntax)
			return
		}
		signed, nbits, ok := parseBitfieldType(argv[j+1])
		if !ok {
			w.WriteError(errBitfieldTy)
			return
		}
		off, ok := db.parseBitOffset(argv[j+2], true, nbits)
		if !ok {
			w.WriteError(errBitOffset)
			return
		}
		var i64 int64
		if op != bfGet {
			readonly = false
			highest = max(highest, off+uint64(nbits)-1)
			if i64, ok = parseInt(argv[j+3]); !ok {
				w.WriteError(errNotInt)
				return
			}
		}
		ops = append(ops, bitfieldOp{offset: off, i64: i64, op: op, ow: ow, bits: nbits, signed: signed})
		if op == bfGet {
			j += 2
		} else {
			j += 3
		}
	}
	var r ref
	if readonly {
		var ok bool
		if r, ok = db.lookupType(now, argv[1], TypeString, w, true); !ok {
			return
		}
	} else {
		if readOnlyCmd {
			w.WriteError("ERR BITFIELD_RO only supports the GET subcommand")
			return
		}
		var ok bool
		if r, _, ok = db.stringForBits(now, argv[1], highest, w); !ok {
			return
		}
	}
	w.WriteArray(len(ops))
	changes := 0
	for _, o := range ops {
		if o.op == bfGet {
			var buf [9]byte
			if r != 0 {
				v := db.valOf(r)
				b := o.offset >> 3
				for i := uint64(0); i < 9 && b+i < uint64(len(v)); i++ {
					buf[i] = v[b+i]
				}
			}
			rel := o.offset & 7
			if o.signed {
				w.WriteInt(getSignedBits(buf[:], rel, o.bits))
			} else {
				w.WriteInt(int64(getUnsignedBits(buf[:], rel, o.bits)))
			}
			continue
		}
		v := db.valOf(r)
		if o.signed {
			old := getSignedBits(v, o.offset, o.bits)
			var nv, ret int64
			var overflow bool
			if o.op == bfIncrBy {
				var wrapped int64
				overflow, wrapped = checkSignedOverflow(old, o.i64, o.bits, o.ow)
				nv = old + o.i64
				if overflow {
					nv = wrapped
				}
				ret = nv
			} else {
				nv = o.i64
				var wrapped int64
				if overflow, wrapped = checkSignedOverflow(nv, 0, o.bits, o.ow); overflow {
					nv = wrapped
				}
				ret = old
			}
			if overflow && o.ow == bfFail {
				w.WriteNull()
				continue
			}
			w.WriteInt(ret)
			setUnsignedBits(v, o.offset, o.bits, uint64(nv))
			changes++
			continue
		}
		old := getUnsignedBits(v, o.offset, o.bits)
		var nv, ret uint64
		var overflow bool
		if o.op == bfIncrBy {
			nv = old + uint64(o.i64)
			var wrapped uint64
			if overflow, wrapped = checkUnsignedOverflow(old, o.i64, o.bits, o.ow); overflow {
				nv = wrapped
			}
			ret = nv
		} else {
			nv = uint64(o.i64)
			var wrapped uint64
			if overflow, wrapped = checkUnsignedOverflow(nv, 0, o.bits, o.ow); overflow {
				nv = wrapped
			}
			ret = old
		}
		if overflow && o.ow == bfFail {
			w.WriteNull()
			continue
		}
		w.WriteInt(int64(ret))
		setUnsignedBits(v, o.offset, o.bits, nv)
		changes++
	}
	if changes > 0 {
		db.notify("setbit", argv[1])
	}
}

func cmdBitField(db *DB, now int64, argv [][]byte, w Writer) {
	bitfieldGeneric(db, now, argv, w, false)
}
func cmdBitFieldRO(db *DB, now int64, argv [][]byte, w Writer) {
	bitfieldGeneric(db, now, argv, w, true)
}

func cmdLCS(db *DB, now int64, argv [][]byte, w Writer) {
	ra := db.lookupRead(now, argv[1])
	rb := db.lookupRead(now, argv[2])
	if (ra != 0 && db.typeOf(ra) != TypeString) || (rb != 0 && db.typeOf(rb) != TypeString) {
		w.WriteError("ERR The specified keys must contain string values")
		return
	}
	var a, b []byte
	if ra != 0 {
		a = db.valOf(ra)
	}
	if rb != 0 {
		b = db.valOf(rb)
	}
	getIdx, getLen, withMatchLen := false, false, false
	minMatchLen := int64(0)
	for j := 3; j < len(argv); j++ {
		more := len(argv) - 1 - j
		switch opt := argv[j]; {
		case equalFold(opt, "idx"):
			getIdx = true
		case equalFold(opt, "len"):
			getLen = true
		case equalFold(opt, "withmatchlen"):
			withMatchLen = true
		case equalFold(opt, "minmatchlen") && more > 0:
			n, ok := parseInt(argv[j+1])
			if !ok {
				w.WriteError(errNotInt)
				return
			}
			minMatchLen = max(n, 0)
			j++
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	if getIdx && getLen {
		w.WriteError("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	if uint64(len(a)) >= math.MaxUint32-1 || uint64(len(b)) >= math.MaxUint32-1 {
		w.WriteError("ERR String too long for LCS")
		return
	}
	alen, blen := len(a), len(b)
	size := uint64(alen+1) * uint64(blen+1) * 4
	if size > uint64(db.opts.ProtoMaxBulkLen) {
		w.WriteError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
		return
	}
	lcs := make([]uint32, (alen+1)*(blen+1))
	at := func(i, j int) *uint32 { return &lcs[j+i*(blen+1)] }
	for i := 1; i <= alen; i++ {
		for j := 1; j <= blen; j++ {
			if a[i-1] == b[j-1] {
				*at(i, j) = *at(i-1, j-1) + 1
			} else {
				*at(i, j) = max(*at(i-1, j), *at(i, j-1))
			}
		}
	}
	total := *at(alen, blen)
	idx := total
	computeLCS := getIdx || !getLen
	var result []byte
	if computeLCS {
		result = make([]byte, idx)
	}
	type match struct{ a0, a1, b0, b1, n uint32 }
	var matches []match
	aStart, aEnd, bStart, bEnd := uint32(alen), uint32(0), uint32(0), uint32(0)
	i, j := alen, blen
	for computeLCS && i > 0 && j > 0 {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			if aStart == uint32(alen) {
				aStart, aEnd = uint32(i-1), uint32(i-1)
				bStart, bEnd = uint32(j-1), uint32(j-1)
			} else if aStart == uint32(i) && bStart == uint32(j) {
				aStart--
				bStart--
			} else {
				emit = true
			}
			if aStart == 0 || bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if *at(i-1, j) > *at(i, j-1) {
				i--
			} else {
				j--
			}
			if aStart != uint32(alen) {
				emit = true
			}
		}
		matchLen := aEnd - aStart + 1
		if emit {
			if minMatchLen == 0 || int64(matchLen) >= minMatchLen {
				matches = append(matches, match{aStart, aEnd, bStart, bEnd, matchLen})
			}
			aStart = uint32(alen)
		}
	}
	switch {
	case getIdx:
		w.WriteMap(2)
		w.WriteBulkString("matches")
		w.WriteArray(len(matches))
		for _, m := range matches {
			if withMatchLen {
				w.WriteArray(3)
			} else {
				w.WriteArray(2)
			}
			w.WriteArray(2)
			w.WriteInt(int64(m.a0))
			w.WriteInt(int64(m.a1))
			w.WriteArray(2)
			w.WriteInt(int64(m.b0))
			w.WriteInt(int64(m.b1))
			if withMatchLen {
				w.WriteInt(int64(m.n))
			}
		}
		w.WriteBulkString("len")
		w.WriteInt(int64(total))
	case getLen:
		w.WriteInt(int64(idx))
	default:
		w.WriteBulk(result)
	}
}

func init() {
	bm := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: 1,
			Categories: cats, run: run})
	}
	bm("setbit", 4, Write|DenyOOM, 1, 1, cmdSetBit, "@write", "@bitmap", "@slow")
	bm("getbit", 3, ReadOnly|Fast, 1, 1, cmdGetBit, "@read", "@bitmap", "@fast")
	bm("bitcount", -2, ReadOnly, 1, 1, cmdBitCount, "@read", "@bitmap", "@slow")
	bm("bitpos", -3, ReadOnly, 1, 1, cmdBitPos, "@read", "@bitmap", "@slow")
	bm("bitop", -4, Write|DenyOOM, 2, -1, cmdBitOp, "@write", "@bitmap", "@slow")
	bm("bitfield", -2, Write|DenyOOM, 1, 1, cmdBitField, "@write", "@bitmap", "@slow")
	bm("bitfield_ro", -2, ReadOnly|Fast, 1, 1, cmdBitFieldRO, "@read", "@bitmap", "@fast")
	bm("lcs", -3, ReadOnly, 1, 2, cmdLCS, "@read", "@string", "@slow")
}
