package sandboxop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// FrameWriter writes a streamed exec's Frames to w, one JSON line each,
// calling flush after each, so output reaches the reader as it is printed.
type FrameWriter struct {
	mu    sync.Mutex
	w     io.Writer
	flush func()
	err   error
}

// NewFrameWriter returns a FrameWriter on w; flush may be nil.
func NewFrameWriter(w io.Writer, flush func()) *FrameWriter {
	if flush == nil {
		flush = func() {}
	}
	return &FrameWriter{w: w, flush: flush}
}

// Frame writes fr; after a failed write every later one fails too.
func (f *FrameWriter) Frame(fr Frame) error {
	b, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, err := f.w.Write(append(b, '\n')); err != nil {
		f.err = err
		return err
	}
	f.flush()
	return nil
}

// Output is a writer of stdout (or stderr) Frames, for Cmd's writers.
func (f *FrameWriter) Output(stderr bool) io.Writer { return output{f, stderr} }

type output struct {
	f      *FrameWriter
	stderr bool
}

func (o output) Write(p []byte) (int, error) {
	fr := Frame{Stdout: p}
	if o.stderr {
		fr = Frame{Stderr: p}
	}
	if err := o.f.Frame(fr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// FrameScanner splits a stream of Frame lines into Frames, whatever
// chunks the stream arrives in.
type FrameScanner struct {
	buf []byte
	// Max bounds a line (a Frame's output is at most what one write of
	// the command carried, base64-encoded); zero is 64 MiB.
	Max int
}

// Push adds a chunk and returns the Frames it completes.
func (s *FrameScanner) Push(chunk []byte) ([]Frame, error) {
	s.buf = append(s.buf, chunk...)
	var out []Frame
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		var fr Frame
		if err := json.Unmarshal(s.buf[:i], &fr); err != nil {
			return out, fmt.Errorf("malformed exec frame: %w", err)
		}
		out = append(out, fr)
		s.buf = s.buf[i+1:]
	}
	max := s.Max
	if max == 0 {
		max = 64 << 20
	}
	if len(s.buf) > max {
		return out, fmt.Errorf("an exec frame longer than %d bytes", max)
	}
	if len(s.buf) == 0 {
		s.buf = nil // let a long line's buffer go
	}
	return out, nil
}
