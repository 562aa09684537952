package resp

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// Reply is one decoded reply value, as a client sees it.
type Reply struct {
	// Kind is the RESP type byte: '+' simple string, '-' error, ':'
	// integer, '$' bulk string, '_' null (RESP2's null bulk and null array
	// decode to it too), '*' array, '%' map (Elems holds key, value, key,
	// value, ...), '~' set, '>' push, ',' double, '#' boolean (Int 1 or
	// 0), '=' verbatim string (Str without its format prefix), '(' big
	// number (Str).
	Kind  byte
	Str   string
	Int   int64
	Elems []Reply
}

// IsError reports an error reply.
func (r Reply) IsError() bool { return r.Kind == '-' }

// String renders a reply compactly, for traces and failure messages.
func (r Reply) String() string {
	var b strings.Builder
	r.render(&b)
	return b.String()
}

func (r Reply) render(b *strings.Builder) {
	switch r.Kind {
	case '+', ',', '(':
		b.WriteString(r.Str)
	case '-':
		b.WriteString("(error) ")
		b.WriteString(r.Str)
	case ':':
		b.WriteString("(integer) ")
		b.WriteString(strconv.FormatInt(r.Int, 10))
	case '#':
		b.WriteString(strconv.FormatBool(r.Int != 0))
	case '$', '=':
		b.WriteString(strconv.Quote(r.Str))
	case '_':
		b.WriteString("(nil)")
	case '*', '%', '~', '>':
		open, close := byte('['), byte(']')
		if r.Kind == '%' {
			open, close = '{', '}'
		}
		b.WriteByte(open)
		for i, e := range r.Elems {
			if i > 0 {
				b.WriteByte(' ')
			}
			e.render(b)
		}
		b.WriteByte(close)
	default:
		b.WriteString("(none)")
	}
}

// Reply parsing bounds: a malformed or hostile reply stream gets an error,
// never an unbounded allocation.
const (
	replyLineBytesMax  = 64 << 10
	replyDepthMax      = 64
	replyElemsMax      = 1 << 24
	replyBulkBytesMax  = 1 << 30
	replyAllocBytesMax = 1 << 20 // preallocated up front; more grows as bytes arrive
)

// ErrIncomplete is ParseReply's answer when b ends before the first
// reply does: read more and try again.
var ErrIncomplete = errors.New("resp: incomplete reply")

// ParseReply decodes the first reply in b and returns it with the number
// of bytes it took. It returns ErrIncomplete when b holds only a prefix of
// a reply, and another error when b is not RESP.
func ParseReply(b []byte) (Reply, int, error) {
	p := parser{b: b}
	r, err := p.reply(0)
	if err != nil {
		return Reply{}, 0, err
	}
	return r, p.pos, nil
}

// ReadReply reads one reply from br, blocking until it is complete.
func ReadReply(br *bufio.Reader) (Reply, error) {
	return readReply(br, 0)
}

type parser struct {
	b   []byte
	pos int
}

func (p *parser) line() (string, error) {
	i := bytes.IndexByte(p.b[p.pos:], '\n')
	if i < 0 {
		if len(p.b)-p.pos > replyLineBytesMax {
			return "", errors.New("resp: reply line too long")
		}
		return "", ErrIncomplete
	}
	end := p.pos + i
	if end == p.pos || p.b[end-1] != '\r' {
		return "", errors.Newf("resp: reply line not ended by CRLF at offset %d", p.pos)
	}
	s := string(p.b[p.pos : end-1])
	p.pos = end + 1
	return s, nil
}

func (p *parser) reply(depth int) (Reply, error) {
	line, err := p.line()
	if err != nil {
		return Reply{}, err
	}
	r, n, err := header(line, depth)
	if err != nil || n < 0 {
		return r, err
	}
	if r.Kind == '$' || r.Kind == '=' {
		if len(p.b)-p.pos < n+2 {
			return Reply{}, ErrIncomplete
		}
		body := p.b[p.pos : p.pos+n]
		if p.b[p.pos+n] != '\r' || p.b[p.pos+n+1] != '\n' {
			return Reply{}, errors.Newf("resp: bulk string not ended by CRLF at offset %d", p.pos+n)
		}
		p.pos += n + 2
		return bulk(r.Kind, body)
	}
	r.Elems = make([]Reply, 0, min(n, replyAllocBytesMax/64))
	for range n {
		e, err := p.reply(depth + 1)
		if err != nil {
			return Reply{}, err
		}
		r.Elems = append(r.Elems, e)
	}
	return r, nil
}

func readReply(br *bufio.Reader, depth int) (Reply, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return Reply{}, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return Reply{}, errors.Newf("resp: reply line %q not ended by CRLF", line)
	}
	r, n, err := header(line[:len(line)-2], depth)
	if err != nil || n < 0 {
		return r, err
	}
	if r.Kind == '$' || r.Kind == '=' {
		body := make([]byte, 0, min(n+2, replyAllocBytesMax))
		var chunk [4096]byte
		for len(body) < n+2 {
			k, err := br.Read(chunk[:min(len(chunk), n+2-len(body))])
			body = append(body, chunk[:k]...)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return Reply{}, err
			}
		}
		if body[n] != '\r' || body[n+1] != '\n' {
			return Reply{}, errors.New("resp: bulk string not ended by CRLF")
		}
		return bulk(r.Kind, body[:n])
	}
	r.Elems = make([]Reply, 0, min(n, replyAllocBytesMax/64))
	for range n {
		e, err := readReply(br, depth+1)
		if err != nil {
			return Reply{}, err
		}
		r.Elems = append(r.Elems, e)
	}
	return r, nil
}

// header decodes a reply's first line. For a bulk or aggregate it returns
// the length that follows (elements; a map's count doubled); -1 when the
// reply is complete with the line.
func header(line string, depth int) (Reply, int, error) {
	if line == "" {
		return Reply{}, -1, errors.New("resp: empty reply line")
	}
	if depth > replyDepthMax {
		return Reply{}, -1, errors.New("resp: reply nested too deep")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', '-', ',', '(':
		return Reply{Kind: kind, Str: rest}, -1, nil
	case '_':
		return Reply{Kind: '_'}, -1, nil
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return Reply{}, -1, errors.Newf("resp: bad integer reply %q", line)
		}
		return Reply{Kind: ':', Int: n}, -1, nil
	case '#':
		switch rest {
		case "t":
			return Reply{Kind: '#', Int: 1}, -1, nil
		case "f":
			return Reply{Kind: '#'}, -1, nil
		}
		return Reply{}, -1, errors.Newf("resp: bad boolean reply %q", line)
	case '$', '=', '*', '%', '~', '>':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 {
			return Reply{}, -1, errors.Newf("resp: bad length in %q", line)
		}
		if n == -1 {
			return Reply{Kind: '_'}, -1, nil // RESP2 null bulk / null array
		}
		limit := replyElemsMax
		if kind == '$' || kind == '=' {
			limit = replyBulkBytesMax
		}
		if kind == '%' {
			n *= 2
		}
		if n > limit {
			return Reply{}, -1, errors.Newf("resp: reply length %d over the limit", n)
		}
		return Reply{Kind: kind}, n, nil
	}
	return Reply{}, -1, errors.Newf("resp: unknown reply type %q", line)
}

func bulk(kind byte, body []byte) (Reply, error) {
	if kind == '=' {
		// Verbatim: "txt:" then the text.
		if len(body) < 4 || body[3] != ':' {
			return Reply{}, errors.New("resp: verbatim string without its format")
		}
		return Reply{Kind: '=', Str: string(body[4:])}, nil
	}
	return Reply{Kind: '$', Str: string(body)}, nil
}
