package log

import (
	"encoding/binary"
	"fmt"

	"github.com/theeye/theeye"
)

// idSize is the length of theeye.EventID.
const idSize = len(theeye.EventID{})

// AppendEnvelope appends the encoding of e to dst and returns the extended
// slice: uvarint(len(body)) followed by body, where body is the zigzag varint
// of ReceivedAt, uvarint(len(App)), the App bytes, the 16 ID bytes, and Raw
// (the rest of body).
func AppendEnvelope(dst []byte, e *theeye.Envelope) []byte {
	dst = binary.AppendUvarint(dst, uint64(bodySize(e)))
	dst = binary.AppendVarint(dst, e.ReceivedAt)
	dst = binary.AppendUvarint(dst, uint64(len(e.App)))
	dst = append(dst, e.App...)
	dst = append(dst, e.ID[:]...)
	return append(dst, e.Raw...)
}

// EnvelopeSize returns len(AppendEnvelope(nil, e)) without encoding, for
// callers that bound batches by bytes.
func EnvelopeSize(e *theeye.Envelope) int {
	n := bodySize(e)
	return theeye.UvarintLen(uint64(n)) + n
}

func bodySize(e *theeye.Envelope) int {
	return theeye.VarintLen(e.ReceivedAt) + theeye.UvarintLen(uint64(len(e.App))) + len(e.App) + idSize + len(e.Raw)
}

// DecodeEnvelope decodes the first envelope of b. e.App is a new string;
// e.Raw aliases b (its capacity is clipped, so appending to it never
// overwrites the next envelope). n is the number of bytes consumed. Varints
// must be minimally encoded, so decoding then re-encoding gives back b[:n].
func DecodeEnvelope(b []byte) (e theeye.Envelope, n int, err error) {
	n, err = decodeEnvelope(b, &e, nil)
	return e, n, err
}

// decodeEnvelope decodes into e. App strings come from apps when it is not
// nil; otherwise e.App is kept when the bytes are the same. Either way a
// reader does not allocate a string per event.
func decodeEnvelope(b []byte, e *theeye.Envelope, apps *appCache) (int, error) {
	body, n, err := envelopeBody(b)
	if err != nil {
		return 0, err
	}
	at, k := binary.Varint(body)
	if k <= 0 || k != theeye.VarintLen(at) {
		return 0, fmt.Errorf("decode envelope: received_at: %w", ErrCorrupt)
	}
	body = body[k:]
	appLen, k := binary.Uvarint(body)
	if k <= 0 || k != theeye.UvarintLen(appLen) || appLen > uint64(len(body)-k) {
		return 0, fmt.Errorf("decode envelope: app: %w", ErrCorrupt)
	}
	body = body[k:]
	app := body[:appLen]
	body = body[appLen:]
	if len(body) < idSize {
		return 0, fmt.Errorf("decode envelope: id: %w", ErrCorrupt)
	}
	e.ReceivedAt = at
	switch {
	case apps != nil:
		e.App = apps.intern(app)
	case e.App != string(app): // the comparison does not allocate
		e.App = string(app)
	}
	copy(e.ID[:], body[:idSize])
	e.Raw = body[idSize:len(body):len(body)]
	return n, nil
}

// envelopeBody splits the length prefix off the first envelope of b. It
// returns the body and the bytes the whole envelope occupies.
func envelopeBody(b []byte) (body []byte, n int, err error) {
	size, k := binary.Uvarint(b)
	if k <= 0 || k != theeye.UvarintLen(size) {
		return nil, 0, fmt.Errorf("decode envelope: length: %w", ErrCorrupt)
	}
	if size > uint64(len(b)-k) {
		return nil, 0, fmt.Errorf("decode envelope: length %d past end of %d bytes: %w", size, len(b)-k, ErrCorrupt)
	}
	end := k + int(size)
	return b[k:end:end], end, nil
}

// appCache interns the few app names a reader meets: events of a handful of
// apps interleave in every frame, and a string per event would be most of
// a reader's allocations.
type appCache struct {
	names [8]string
	next  int
}

func (c *appCache) intern(b []byte) string {
	for _, s := range c.names {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	c.names[c.next] = s
	c.next = (c.next + 1) % len(c.names)
	return s
}
