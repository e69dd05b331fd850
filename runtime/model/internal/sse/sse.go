// Package sse reads server-sent event streams (the WHATWG HTML standard's
// text/event-stream) from a body that arrives in pieces: lines end with
// CRLF, LF or CR, a line or its terminator may be split across reads at
// any byte, an event's data may span several lines, and comments are
// skipped.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event is one dispatched event.
type Event struct {
	// Type is the event field ("" when the event had none).
	Type string
	// Data is the event's data lines joined with "\n". It is valid until
	// the next call of Next.
	Data []byte
	// ID is the last event ID seen in the stream.
	ID string
}

// MaxEvent is the default cap on one event (its data, or any one line).
const MaxEvent = 8 << 20

// ErrTooLong is the error of an event or line over the Reader's cap.
var ErrTooLong = errors.New("sse: event too long")

// Reader reads events from a stream.
type Reader struct {
	r   io.Reader
	max int

	buf        []byte
	start, end int // unconsumed bytes are buf[start:end]
	err        error
	afterCR    bool // the last line ended with CR: skip an LF that follows
	first      bool // no line read yet: a BOM may start the stream

	typ     []byte
	data    []byte
	hasData bool
	id      string
	ev      Event
}

// NewReader returns a Reader of r's stream. Each Next reads from r only as
// much as it needs, with reads of up to 32 KiB.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, max: MaxEvent, buf: make([]byte, 32<<10), first: true}
}

// SetMax sets the cap on one event or line, in bytes.
func (r *Reader) SetMax(n int) { r.max = n }

// Next returns the next event. At the end of the stream it returns io.EOF
// when the stream ended between events, and io.ErrUnexpectedEOF when it
// ended inside one (an event whose blank line never came is not
// dispatched, as the standard says). A read error of the underlying reader
// is returned as it is.
func (r *Reader) Next() (*Event, error) {
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && (r.hasData || len(r.typ) > 0 || r.partial()) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			if !r.hasData {
				r.typ = r.typ[:0]
				continue
			}
			data := r.data
			if len(data) > 0 && data[len(data)-1] == '\n' {
				data = data[:len(data)-1]
			}
			r.ev = Event{Type: string(r.typ), Data: data, ID: r.id}
			r.typ, r.data, r.hasData = r.typ[:0], r.data[:0], false
			return &r.ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if len(r.data)+len(value)+1 > r.max {
				return nil, fmt.Errorf("%w: over %d bytes of data", ErrTooLong, r.max)
			}
			r.data = append(append(r.data, value...), '\n')
			r.hasData = true
		case "event":
			r.typ = append(r.typ[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.id = string(value)
			}
		}
	}
}

// partial reports whether unconsumed bytes remain: a last line without a
// terminator.
func (r *Reader) partial() bool { return r.start < r.end }

// line returns the next line without its terminator, valid until the next
// call. At the end of the stream, a last line without a terminator is
// discarded (it cannot end an event) and io.EOF returned.
func (r *Reader) line() ([]byte, error) {
	scanned := 0 // bytes of buf[start:end] known to hold no terminator
	for {
		if r.afterCR && r.start < r.end {
			r.afterCR = false
			if r.buf[r.start] == '\n' {
				r.start++
			}
		}
		if r.first && r.end-r.start >= 3 {
			r.first = false
			if bytes.HasPrefix(r.buf[r.start:r.end], []byte("\xef\xbb\xbf")) {
				r.start += 3
				scanned = 0
			}
		}
		if i := bytes.IndexAny(r.buf[r.start+scanned:r.end], "\r\n"); i >= 0 {
			i += r.start + scanned
			line := r.buf[r.start:i]
			r.afterCR = r.buf[i] == '\r'
			r.start = i + 1
			r.first = false
			return line, nil
		}
		scanned = r.end - r.start
		if r.err != nil {
			return nil, r.err
		}
		if scanned > r.max {
			return nil, fmt.Errorf("%w: a line over %d bytes", ErrTooLong, r.max)
		}
		r.fill()
	}
}

// fill reads more into buf, moving unconsumed bytes to its start or
// growing it when it is full.
func (r *Reader) fill() {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	// A reader may return 0, nil; io.Reader asks callers to treat it as
	// nothing happened, but a stream of them must not spin forever.
	for tries := 0; tries < 100; tries++ {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}
