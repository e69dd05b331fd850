package sandboxop

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf, nil)
	_, err := fw.Output(false).Write([]byte("out\x00\xff"))
	require.NoError(t, err)
	_, err = fw.Output(true).Write([]byte("err"))
	require.NoError(t, err)
	require.NoError(t, fw.Frame(Frame{End: &Response{Result: &Result{Stdout: []byte("out\x00\xff"), ExitCode: 3}}}))

	var s FrameScanner
	var got []Frame
	for _, b := range buf.Bytes() { // a byte a chunk
		frames, err := s.Push([]byte{b})
		require.NoError(t, err)
		got = append(got, frames...)
	}
	require.Len(t, got, 3)
	assert.Equal(t, []byte("out\x00\xff"), got[0].Stdout, "binary output survives")
	assert.Equal(t, []byte("err"), got[1].Stderr)
	assert.Equal(t, 3, got[2].End.Result.ExitCode)

	_, err = (&FrameScanner{}).Push([]byte("not json\n"))
	assert.ErrorContains(t, err, "malformed exec frame")
	_, err = (&FrameScanner{Max: 8}).Push([]byte("0123456789"))
	assert.ErrorContains(t, err, "longer than 8 bytes")
}

// FuzzFrameScanner: a stream split anywhere gives the frames of the
// whole stream, and no input panics.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte("{\"stdout\":\"YQ==\"}\n{\"end\":{}}\n"), uint8(3))
	f.Add([]byte("{\"stderr\":\"\"}\n\n{"), uint8(1))
	f.Add([]byte("garbage\n{\"end\":{\"error\":{\"code\":\"escape\",\"message\":\"x\"}}}\n"), uint8(7))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		var whole FrameScanner
		want, werr := whole.Push(stream)
		var split FrameScanner
		n := int(cut) % (len(stream) + 1)
		got, gerr := split.Push(stream[:n])
		if gerr == nil {
			more, err := split.Push(stream[n:])
			got, gerr = append(got, more...), err
		}
		if (werr == nil) != (gerr == nil) {
			// A malformed line fails either way; only where it fails may differ.
			return
		}
		if werr == nil {
			require.Equal(t, len(want), len(got))
		}
	})
}
