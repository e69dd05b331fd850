package sse

import (
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ev struct{ Type, Data, ID string }

// readAll reads every event of r and the error that ended the stream.
func readAll(t testing.TB, r *Reader) ([]ev, error) {
	var out []ev
	for {
		e, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev{e.Type, string(e.Data), e.ID})
	}
}

// chunked returns its pieces one Read each: a stream that arrives as the
// network delivers it.
type chunked struct{ pieces []string }

func (c *chunked) Read(p []byte) (int, error) {
	for len(c.pieces) > 0 && c.pieces[0] == "" {
		c.pieces = c.pieces[1:]
	}
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	return n, nil
}

// splits returns s cut into pieces of size n.
func splits(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestReader(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []ev
		err    error
	}{
		{"lf", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n", []ev{{"a", "1", ""}, {"b", "2", ""}}, io.EOF},
		{"crlf", "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n", []ev{{"a", "1", ""}, {"b", "2", ""}}, io.EOF},
		{"cr", "event: a\rdata: 1\r\rdata: 2\r\r", []ev{{"a", "1", ""}, {"", "2", ""}}, io.EOF},
		{"mixed terminators", "data: 1\r\n\ndata: 2\r\r\ndata: 3\n\r", []ev{{"", "1", ""}, {"", "2", ""}, {"", "3", ""}}, io.EOF},
		{"multi-line data", "data: a\ndata:b\ndata:  c\ndata\n\n", []ev{{"", "a\nb\n c\n", ""}}, io.EOF},
		{"comments and unknown fields", ": ping\nretry: 10\nfoo: bar\ndata: x\n:\n\n", []ev{{"", "x", ""}}, io.EOF},
		{"colon in value", "data: {\"a\":\"b:c\"}\n\n", []ev{{"", `{"a":"b:c"}`, ""}}, io.EOF},
		{"event without data is not dispatched", "event: ping\n\ndata: 1\n\n", []ev{{"", "1", ""}}, io.EOF},
		{"empty data dispatches", "data\n\n", []ev{{"", "", ""}}, io.EOF},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", []ev{{"", "a", "7"}, {"", "b", "7"}, {"", "c", ""}}, io.EOF},
		{"bom", "\xef\xbb\xbfdata: a\n\n", []ev{{"", "a", ""}}, io.EOF},
		{"truncated event", "data: a\n\ndata: b\n", []ev{{"", "a", ""}}, io.ErrUnexpectedEOF},
		{"truncated line", "data: a\n\ndata: b", []ev{{"", "a", ""}}, io.ErrUnexpectedEOF},
		{"empty stream", "", nil, io.EOF},
		{"blank lines only", "\n\r\n\r", nil, io.EOF},
	}
	for _, tc := range tests {
		for _, size := range []int{1, 2, 3, 7, 1 << 20} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := readAll(t, NewReader(&chunked{pieces: splits(tc.stream, size)}))
				assert.Equal(t, tc.want, got, "pieces of %d", size)
				assert.ErrorIs(t, err, tc.err, "pieces of %d", size)
			})
		}
	}
}

// A CR at the end of one read and the LF at the start of the next are one
// line terminator, not an empty line that would dispatch early.
func TestCRLFSplitAcrossReads(t *testing.T) {
	r := NewReader(&chunked{pieces: []string{"data: a\r", "\ndata: b\r", "\n\r", "\n"}})
	got, err := readAll(t, r)
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []ev{{"", "a\nb", ""}}, got)
}

func TestTooLong(t *testing.T) {
	r := NewReader(strings.NewReader("data: " + strings.Repeat("x", 100) + "\n\n"))
	r.SetMax(50)
	_, err := r.Next()
	assert.ErrorIs(t, err, ErrTooLong)

	r = NewReader(strings.NewReader(strings.Repeat("data: 0123456789\n", 10) + "\n"))
	r.SetMax(50)
	_, err = r.Next()
	assert.ErrorIs(t, err, ErrTooLong, "many lines of one event")
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadErrorIsReturned(t *testing.T) {
	_, err := NewReader(io.MultiReader(strings.NewReader("data: a\n"), failing{})).Next()
	assert.EqualError(t, err, "connection reset")
}

type stalled struct{}

func (stalled) Read([]byte) (int, error) { return 0, nil }

func TestReaderThatNeverProgresses(t *testing.T) {
	_, err := NewReader(stalled{}).Next()
	assert.ErrorIs(t, err, io.ErrNoProgress)
}

var lineEnd = regexp.MustCompile(`\r\n|\r|\n`)

// reference parses a whole stream at once, straight from the standard's
// wording: the oracle of FuzzReader.
func reference(stream string) ([]ev, error) {
	stream = strings.TrimPrefix(stream, "\xef\xbb\xbf")
	parts := lineEnd.Split(stream, -1)
	lines, rest := parts[:len(parts)-1], parts[len(parts)-1]
	var (
		out            []ev
		typ, data, id  string
		hasData        bool
		pendingTypeSet bool
	)
	for _, line := range lines {
		if line == "" {
			if hasData {
				out = append(out, ev{typ, strings.TrimSuffix(data, "\n"), id})
			}
			typ, data, hasData, pendingTypeSet = "", "", false, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "data":
			data += value + "\n"
			hasData = true
		case "event":
			typ, pendingTypeSet = value, true
		case "id":
			if !strings.Contains(value, "\x00") {
				id = value
			}
		}
	}
	if hasData || (pendingTypeSet && typ != "") || rest != "" {
		return out, io.ErrUnexpectedEOF
	}
	return out, io.EOF
}

// FuzzReader checks the Reader against the reference parser on any stream,
// delivered in pieces whose sizes come from the fuzzer.
func FuzzReader(f *testing.F) {
	f.Add("event: message_start\ndata: {\"type\":\"message_start\"}\n\n", []byte{1, 5, 200})
	f.Add("data: a\r\n\r\ndata: b\r\r: c\n\n", []byte{3})
	f.Add("\xef\xbb\xbfid: 1\ndata\n\n", []byte{1, 1, 1})
	f.Add("data: x\r", []byte{8})
	f.Fuzz(func(t *testing.T, stream string, cuts []byte) {
		var pieces []string
		s := stream
		for i := 0; len(s) > 0; i++ {
			n := len(s)
			if len(cuts) > 0 {
				n = min(int(cuts[i%len(cuts)])+1, len(s))
			}
			pieces = append(pieces, s[:n])
			s = s[n:]
		}
		got, err := readAll(t, NewReader(&chunked{pieces: pieces}))
		want, wantErr := reference(stream)
		require.Equal(t, want, got, "stream %q in %q", stream, pieces)
		require.ErrorIs(t, err, wantErr, "stream %q in %q", stream, pieces)
	})
}
