package udf

import (
	"fmt"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/engine"
)

// Error is a failure the user caused (a bad module, a trapping guest, an
// undeclared key). Its message is already in Redis's shape ("ERR ...") and
// goes to the client as is.
type Error struct {
	msg    string
	killed bool // stopped from outside (IsKilled)
}

func (e *Error) Error() string { return e.msg }

func userErrorf(format string, args ...any) *Error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}

// Message returns the client-facing text for any error from this package:
// a user error's own message, or "ERR internal: ..." for a fault of keel's.
func Message(err error) string {
	var ue *Error
	if errors.As(err, &ue) {
		return ue.msg
	}
	return "ERR internal: " + err.Error()
}

// ReplyKind is the RESP type of a Reply node.
type ReplyKind uint8

// Reply kinds a guest can build.
const (
	ReplyNil ReplyKind = iota
	ReplyInt
	ReplyBulk
	ReplySimple
	ReplyError
	ReplyArray
)

// Reply is the tree a guest built with the keel.reply_* host calls.
type Reply struct {
	Kind  ReplyKind
	Int   int64
	Bytes []byte // Bulk, Simple and Error
	Elems []Reply
}

// Write writes the reply to w.
func (r Reply) Write(w engine.Writer) {
	switch r.Kind {
	case ReplyNil:
		w.WriteNull()
	case ReplyInt:
		w.WriteInt(r.Int)
	case ReplyBulk:
		w.WriteBulk(r.Bytes)
	case ReplySimple:
		w.WriteSimple(string(r.Bytes))
	case ReplyError:
		w.WriteError(string(r.Bytes))
	case ReplyArray:
		w.WriteArray(len(r.Elems))
		for _, e := range r.Elems {
			e.Write(w)
		}
	default:
		panic(errors.AssertionFailedf("udf: reply kind %d", r.Kind))
	}
}

// String renders the reply for tests and logs.
func (r Reply) String() string {
	switch r.Kind {
	case ReplyNil:
		return "(nil)"
	case ReplyInt:
		return fmt.Sprintf("(integer) %d", r.Int)
	case ReplyBulk:
		return fmt.Sprintf("%q", r.Bytes)
	case ReplySimple:
		return string(r.Bytes)
	case ReplyError:
		return "(error) " + string(r.Bytes)
	case ReplyArray:
		s := "["
		for i, e := range r.Elems {
			if i > 0 {
				s += " "
			}
			s += e.String()
		}
		return s + "]"
	}
	return "?"
}

// Result is what a successful call produced: the reply for the client and
// the effects for the log. Effects are engine commands (argv), one per key
// the call changed, in the order the call first wrote each key:
//
//	SET key value               (written, no expiry)
//	SET key value PXAT ms       (written with a TTL; absolute, so replay
//	                             at a later time gives the same deadline)
//	SET key value KEEPTTL       (INCRBY of a key that existed)
//	DEL key                     (deleted a key that existed)
//
// Applying them in order with engine.Exec reproduces the call's writes.
type Result struct {
	Reply   Reply
	Effects [][][]byte
}

// WriteReply writes the call's reply to w. (Not WriteTo: that name is
// io.WriterTo's, and vet holds it to that signature.)
func (r Result) WriteReply(w engine.Writer) { r.Reply.Write(w) }

// Bounds on what one call may build; a guest that exceeds one fails.
const (
	replyNodesMax = 1 << 20
	replyDepthMax = 64
)

// replyBuilder assembles the reply from the guest's reply_* calls, which
// arrive in pre-order (an array header, then its elements).
type replyBuilder struct {
	nodes []Reply
	need  int // values still expected; starts at 1 with the first node
}

func (b *replyBuilder) add(n Reply) error {
	if len(b.nodes) > 0 && b.need == 0 {
		return userErrorf("ERR function replied more than once")
	}
	if len(b.nodes) >= replyNodesMax {
		return userErrorf("ERR function reply has more than %d elements", replyNodesMax)
	}
	if len(b.nodes) == 0 {
		b.need = 1
	}
	b.nodes = append(b.nodes, n)
	b.need--
	if n.Kind == ReplyArray {
		b.need += int(n.Int)
	}
	return nil
}

// finish returns the reply tree; no reply at all is nil.
func (b *replyBuilder) finish() (Reply, error) {
	if len(b.nodes) == 0 {
		return Reply{Kind: ReplyNil}, nil
	}
	if b.need != 0 {
		return Reply{}, userErrorf("ERR function returned with an incomplete reply (%d elements missing)", b.need)
	}
	r, rest, err := buildTree(b.nodes, 0)
	if err != nil {
		return Reply{}, err
	}
	if len(rest) != 0 {
		return Reply{}, errors.AssertionFailedf("udf: %d reply nodes left over", len(rest))
	}
	return r, nil
}

func buildTree(nodes []Reply, depth int) (Reply, []Reply, error) {
	if depth > replyDepthMax {
		return Reply{}, nil, userErrorf("ERR function reply nests deeper than %d", replyDepthMax)
	}
	n := nodes[0]
	nodes = nodes[1:]
	if n.Kind != ReplyArray {
		return n, nodes, nil
	}
	n.Elems = make([]Reply, n.Int)
	for i := range n.Elems {
		var err error
		n.Elems[i], nodes, err = buildTree(nodes, depth+1)
		if err != nil {
			return Reply{}, nil, err
		}
	}
	n.Int = 0
	return n, nodes, nil
}
