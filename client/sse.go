package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// sseMessage is one message of a Server-Sent Events stream (the fields of
// the WHATWG EventSource parsing rules that The Eye uses).
type sseMessage struct {
	id    string
	hasID bool
	event string // "message" when the stream named none
	data  []byte // the data lines, joined with '\n'
	retry int    // milliseconds, 0 when absent
}

// errLineTooLong is a stream line over the parser's limit.
var errLineTooLong = errors.New("stream line too long")

// sseParser reads messages from a stream. Lines end with "\n" or "\r\n"
// (The Eye sends "\n"); a line longer than max is an error, so a broken
// server cannot make the client buffer without bound.
type sseParser struct {
	r    *bufio.Reader
	max  int
	line []byte
	// onLine, when set, is called for every line read (comments
	// included): the stream is alive.
	onLine func()
}

func newSSEParser(r io.Reader, max int) *sseParser {
	return &sseParser{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// readLine returns the next line without its ending, valid until the
// next call.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		chunk, err := p.r.ReadSlice('\n')
		if len(p.line)+len(chunk) > p.max+2 {
			return nil, fmt.Errorf("%w: over %d bytes", errLineTooLong, p.max)
		}
		p.line = append(p.line, chunk...)
		switch {
		case err == nil:
			line := p.line[:len(p.line)-1]
			if p.onLine != nil {
				p.onLine()
			}
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(p.line) > 0:
			return nil, io.ErrUnexpectedEOF // a message cut short is not dispatched
		default:
			return nil, err
		}
	}
}

// next returns the next message; comments and empty messages are
// skipped. At the end of the stream it returns io.EOF (or
// io.ErrUnexpectedEOF when the stream stopped inside a message, which is
// then dropped, as EventSource drops it).
func (p *sseParser) next() (sseMessage, error) {
	var m sseMessage
	var data []byte
	hasData := false
	for {
		line, err := p.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && (hasData || m.hasID || m.event != "") {
				err = io.ErrUnexpectedEOF
			}
			return sseMessage{}, err
		}
		if len(line) == 0 {
			if !hasData {
				m = sseMessage{} // nothing to dispatch
				continue
			}
			m.data = data
			if m.event == "" {
				m.event = "message"
			}
			return m, nil
		}
		if line[0] == ':' {
			continue // a comment: a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "event":
			m.event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				m.id, m.hasID = string(value), true
			}
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				m.retry = n
			}
		}
	}
}
