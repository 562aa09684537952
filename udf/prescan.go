package udf

import (
	"github.com/cockroachdb/errors"
)

// prescan walks a module's structure before any decoder sees it and
// returns it without custom sections.
//
// Why: wabin and wazero both size their allocations by the counts a module
// declares (make([]T, count) before reading the elements), so a 100-byte
// module claiming 4 billion exports makes the server allocate until it
// dies; FuzzLoad found exactly that. prescan checks every count and length
// that a decoder will allocate by against the bytes actually there (each
// element takes at least one byte), so allocations stay proportional to the
// module's size. Custom sections (names, debug info) do not affect
// execution and wabin decodes the name section the same unguarded way:
// they are dropped from the module keel compiles (the uploaded bytes, kept
// for DUMP, are unchanged).
func prescan(mod []byte) ([]byte, error) {
	if len(mod) < 8 || string(mod[:4]) != "\x00asm" {
		return nil, errors.New("missing the \\0asm magic")
	}
	out := make([]byte, 0, len(mod))
	out = append(out, mod[:8]...)
	p := 8
	for p < len(mod) {
		start := p
		id := mod[p]
		size, q, err := readU32(mod, p+1)
		if err != nil {
			return nil, err
		}
		if uint64(size) > uint64(len(mod)-q) {
			return nil, errors.Newf("section %d claims %d bytes, %d remain", id, size, len(mod)-q)
		}
		payload := mod[q : q+int(size)]
		p = q + int(size)
		if id == 0 {
			continue // custom
		}
		if err := scanSection(id, payload); err != nil {
			return nil, errors.Wrapf(err, "section %d", id)
		}
		out = append(out, mod[start:p]...)
	}
	return out, nil
}

// sectionReader reads a section payload, refusing any count or length
// larger than what is left.
type sectionReader struct {
	b []byte
	p int
}

func (r *sectionReader) left() int { return len(r.b) - r.p }

func (r *sectionReader) u32() (uint32, error) {
	v, q, err := readU32(r.b, r.p)
	if err != nil {
		return 0, err
	}
	r.p = q
	return v, nil
}

// count reads a vector length or byte length and checks it against the
// bytes left (each element takes at least one byte).
func (r *sectionReader) count() (int, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n) > uint64(r.left()) {
		return 0, errors.Newf("a count of %d with %d bytes left", n, r.left())
	}
	return int(n), nil
}

func (r *sectionReader) skip(n int) error {
	if n > r.left() {
		return errTruncated(r.p)
	}
	r.p += n
	return nil
}

func (r *sectionReader) byte1() (byte, error) {
	if r.left() < 1 {
		return 0, errTruncated(r.p)
	}
	r.p++
	return r.b[r.p-1], nil
}

// bytesVec is a name or a data segment's bytes.
func (r *sectionReader) bytesVec() error {
	n, err := r.count()
	if err != nil {
		return err
	}
	return r.skip(n)
}

func (r *sectionReader) limits() error {
	flag, err := r.byte1()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag&1 != 0 {
		_, err = r.u32()
	}
	return err
}

// constExpr skips a constant expression up to its end.
func (r *sectionReader) constExpr() error {
	for i := 0; ; i++ {
		if i > 64 {
			return errors.New("constant expression too long")
		}
		op, err := r.byte1()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x42, 0x23, 0xd2: // i32.const, i64.const, global.get, ref.func
			q, err := skipLEB(r.b, r.p)
			if err != nil {
				return err
			}
			r.p = q
		case 0x43:
			err = r.skip(4)
		case 0x44:
			err = r.skip(8)
		case 0xd0: // ref.null t
			_, err = r.byte1()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		default:
			return errors.Newf("unsupported constant instruction 0x%02x", op)
		}
		if err != nil {
			return err
		}
	}
}

func (r *sectionReader) exprVec() error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	return nil
}

func (r *sectionReader) u32Vec() error {
	n, err := r.count()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func scanSection(id byte, payload []byte) error {
	r := &sectionReader{b: payload}
	if id == 8 || id == 12 { // start, data count: one index
		_, err := r.u32()
		return err
	}
	if id > 12 {
		return errors.Newf("unknown section id %d", id)
	}
	n, err := r.count()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		switch id {
		case 1: // type: 0x60 vec(valtype) vec(valtype)
			if _, err = r.byte1(); err == nil {
				if err = r.bytesVec(); err == nil {
					err = r.bytesVec()
				}
			}
		case 2: // import: module name, name, desc
			if err = r.bytesVec(); err == nil {
				err = r.bytesVec()
			}
			var kind byte
			if err == nil {
				kind, err = r.byte1()
			}
			if err == nil {
				switch kind {
				case 0:
					_, err = r.u32()
				case 1:
					if _, err = r.byte1(); err == nil {
						err = r.limits()
					}
				case 2:
					err = r.limits()
				case 3:
					err = r.skip(2)
				default:
					err = errors.Newf("import kind %d", kind)
				}
			}
		case 3: // function: type indices
			_, err = r.u32()
		case 4: // table: reftype limits
			if _, err = r.byte1(); err == nil {
				err = r.limits()
			}
		case 5: // memory
			err = r.limits()
		case 6: // global: valtype mut expr
			if err = r.skip(2); err == nil {
				err = r.constExpr()
			}
		case 7: // export: name kind index
			if err = r.bytesVec(); err == nil {
				if err = r.skip(1); err == nil {
					_, err = r.u32()
				}
			}
		case 9:
			err = r.element()
		case 10: // code: size-prefixed bodies; locals are checked by both decoders
			var size int
			if size, err = r.count(); err == nil {
				err = r.skip(size)
			}
		case 11: // data
			var flag uint32
			if flag, err = r.u32(); err == nil {
				switch flag {
				case 0:
					if err = r.constExpr(); err == nil {
						err = r.bytesVec()
					}
				case 1:
					err = r.bytesVec()
				case 2:
					if _, err = r.u32(); err == nil {
						if err = r.constExpr(); err == nil {
							err = r.bytesVec()
						}
					}
				default:
					err = errors.Newf("data segment kind %d", flag)
				}
			}
		}
		if err != nil {
			return errors.Wrapf(err, "entry %d", i)
		}
	}
	if r.left() != 0 {
		return errors.Newf("%d bytes after the last entry", r.left())
	}
	return nil
}

// element skips one element segment (the eight encodings of WebAssembly 2.0).
func (r *sectionReader) element() error {
	flag, err := r.u32()
	if err != nil {
		return err
	}
	if flag > 7 {
		return errors.Newf("element segment kind %d", flag)
	}
	if flag&2 != 0 && flag&1 == 0 { // explicit table index
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if flag&1 == 0 { // active: offset expression
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	if flag&3 != 0 { // elemkind or reftype
		if _, err := r.byte1(); err != nil {
			return err
		}
	}
	if flag&4 != 0 {
		return r.exprVec()
	}
	return r.u32Vec()
}
