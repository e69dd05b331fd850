package local

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// logWriter turns a module instance's stdout or stderr into log records, one
// per line. A Go guest prints its panics and fatal errors to stderr, so this
// is where a trap's reason shows up.
type logWriter struct {
	mu     sync.Mutex
	logger *slog.Logger
	level  slog.Level
	stream string
	buf    []byte
}

// maxLine bounds a line held while waiting for its newline.
const maxLine = 64 << 10

func newLogWriter(logger *slog.Logger, level slog.Level, stream string) *logWriter {
	return &logWriter{logger: logger, level: level, stream: stream}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.emit(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *logWriter) emit(line []byte) {
	w.logger.Log(context.Background(), w.level, string(line), "stream", w.stream)
}
