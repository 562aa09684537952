package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/errors"
)

// A connection carries, after the TLS handshake if any:
//
//	dialer → acceptor   hello: helloMagic, the dialer's node id (8 bytes, big-endian)
//	acceptor → dialer   hello: helloMagic, the acceptor's node id, once it accepts
//	dialer → acceptor   frames, until either end closes
//
// A frame is its payload's length (4 bytes, big-endian), the CRC32C
// (Castagnoli) of those 4 length bytes and the payload (4 bytes,
// big-endian), then the payload. TLS already rejects bytes changed on the
// wire; the checksum catches what TLS cannot (a bug or bad memory on the
// sender before encryption) and plaintext mode's wire errors, so a
// corrupt message is dropped rather than handed to Raft.
const (
	// helloMagic opens every hello; the 2 is the frame format's version
	// (1 had no checksum and no answer to the hello).
	helloMagic = "KEEL2\x00\x00\x00"
	helloBytes = len(helloMagic) + 8
	// frameHeaderBytes is a frame's length and checksum.
	frameHeaderBytes = 8
	// frameEagerBytesMax: a frame up to this size is read into a buffer of
	// its announced length; a longer one grows its buffer as bytes arrive,
	// so that a peer announcing MessageBytesMax and sending nothing costs
	// little memory.
	frameEagerBytesMax = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errFrameCorrupt: the frame's checksum does not match; the frame is
	// dropped and, since its length may be what broke, the connection too.
	errFrameCorrupt = errors.New("frame checksum mismatch")
	// errFrameTooLarge: the frame announced more than MessageBytesMax.
	errFrameTooLarge = errors.New("frame over MessageBytesMax")
)

func appendHello(b []byte, id uint64) []byte {
	b = append(b, helloMagic...)
	return binary.BigEndian.AppendUint64(b, id)
}

// parseHello returns the node id of a hello.
func parseHello(b []byte) (uint64, bool) {
	if len(b) != helloBytes || string(b[:len(helloMagic)]) != helloMagic {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[len(helloMagic):]), true
}

func frameHeader(msg []byte) [frameHeaderBytes]byte {
	var hdr [frameHeaderBytes]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(msg)))
	sum := crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, msg)
	binary.BigEndian.PutUint32(hdr[4:], sum)
	return hdr
}

// writeFrame writes one frame; msg is at most MessageBytesMax.
func writeFrame(w *bufio.Writer, msg []byte) error {
	hdr := frameHeader(msg)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// readFrame reads one frame and returns its payload, which the caller
// owns. errFrameTooLarge and errFrameCorrupt (possibly wrapped) say the
// stream can no longer be trusted; any other error is the connection's.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > MessageBytesMax {
		return nil, errors.Wrapf(errFrameTooLarge, "%d bytes announced", n)
	}
	var msg []byte
	if n <= frameEagerBytesMax {
		msg = make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return nil, noEOF(err)
		}
	} else {
		var buf bytes.Buffer
		buf.Grow(frameEagerBytesMax)
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return nil, noEOF(err)
		}
		msg = buf.Bytes()
	}
	sum := crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, msg)
	if sum != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, errors.Wrapf(errFrameCorrupt, "%d-byte frame", n)
	}
	return msg, nil
}

// noEOF: a stream that ends inside a frame was cut, not closed.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
