package scrub

import "io"

// NewReader returns r's bytes with s's secrets replaced, the same bytes
// s.Bytes gives for the whole of r, read by read: a secret cut between two
// of r's reads is found whole. It holds back at most s.HoldBack() bytes:
// the run of bytes an encoding could be made of that ends what it has read,
// whatever the secrets' values (see the package documentation), so a chunk
// that ends in punctuation, such as a JSON event, is not delayed. Close
// closes r. When s is empty, NewReader returns r itself.
func NewReader(r io.ReadCloser, s *Scrubber) io.ReadCloser {
	if s.Empty() {
		return r
	}
	return &reader{body: r, s: s, e: newEngine(s)}
}

type reader struct {
	body  io.ReadCloser
	s     *Scrubber
	e     *engine
	chunk []byte
	buf   []byte
	ready []byte // scrubbed, to hand out (in buf)
	err   error  // from body, once it has ended or failed
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.ready) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if cap(r.chunk) < len(p) || r.chunk == nil {
			r.chunk = make([]byte, max(len(p), 4096))
		}
		n, err := r.body.Read(r.chunk[:cap(r.chunk)])
		r.buf = append(r.buf[:0], r.e.push(r.chunk[:n])...)
		if err != nil {
			// The end (or a failure): nothing more can complete a secret.
			r.buf = append(r.buf, r.e.flush()...)
			r.err = err
		}
		r.ready = r.buf
	}
	n := copy(p, r.ready)
	r.ready = r.ready[n:]
	if len(r.ready) == 0 && r.err != nil {
		return n, r.err
	}
	return n, nil
}

func (r *reader) Close() error { return r.body.Close() }

// push reads the next chunk of a stream and returns what can be handed out
// already, valid until the next call.
func (e *engine) push(p []byte) []byte {
	e.out = e.out[:0]
	e.src = append(e.src, p...)
	e.write(p)
	return e.out
}

// flush ends the stream and returns the rest, scrubbed.
func (e *engine) flush() []byte {
	e.out = e.out[:0]
	e.finish()
	return e.out
}
