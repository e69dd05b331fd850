package tests

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainText is what /coded/identity answers, and what every coded response
// decodes to (the corrupt ones aside).
const plainText = "hello, plain world"

// codedResponse is one hostile or careless answer: its Content-Encoding
// field lines and its body.
type codedResponse struct {
	lines []string
	body  func(t *testing.T) []byte
}

// codedResponses are what the fake API answers at /coded/<name>, whatever
// the request asked for: valid and corrupt bodies under every spelling of
// a coding, stacked and split codings, codings nobody decodes, and a
// decompression bomb. Only identity may reach the agent; the rest must be
// a fetch_error, never the encoded bytes, and never take the host down
// (workerd under wrangler dev aborts the whole process when its inspector
// decodes a corrupt exact "gzip" or "br" body it was handed).
var codedResponses = map[string]codedResponse{
	"identity":                {[]string{"identity"}, plain},
	"none":                    {nil, plain},
	"gzip":                    {[]string{"gzip"}, gzipOf(plainText)},
	"gzip-corrupt":            {[]string{"gzip"}, raw("this is not gzip at all")},
	"gzip-truncated":          {[]string{"gzip"}, truncated(gzipOf(plainText))},
	"GZIP":                    {[]string{"GZIP"}, gzipOf(plainText)},
	"Gzip-corrupt":            {[]string{"Gzip"}, raw("not gzip either")},
	"x-gzip":                  {[]string{"x-gzip"}, gzipOf(plainText)},
	"deflate":                 {[]string{"deflate"}, deflateOf(plainText)},
	"deflate-corrupt":         {[]string{"deflate"}, raw("not zlib")},
	"br-corrupt":              {[]string{"br"}, raw("this is not brotli at all")},
	"gzip-gzip":               {[]string{"gzip, gzip"}, func(t *testing.T) []byte { return gzipBytes(t, gzipOf(plainText)(t)) }},
	"gzip-line-br-line":       {[]string{"gzip", "br"}, gzipOf(plainText)},
	"identity-gzip":           {[]string{"identity, gzip"}, gzipOf(plainText)},
	"identity-line-gzip-line": {[]string{"identity", "gzip"}, gzipOf(plainText)},
	"zstd":                    {[]string{"zstd"}, raw("\x28\xb5\x2f\xfd not really zstd")},
	"compress":                {[]string{"compress"}, raw("\x1f\x9d not really lzw")},
	"gzip-bomb":               {[]string{"gzip"}, bomb},
}

func plain(*testing.T) []byte { return []byte(plainText) }

func raw(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }

func gzipOf(s string) func(*testing.T) []byte {
	return func(t *testing.T) []byte { return gzipBytes(t, []byte(s)) }
}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func deflateOf(s string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf) // HTTP's "deflate" is the zlib format
		_, err := w.Write([]byte(s))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return buf.Bytes()
	}
}

func truncated(f func(*testing.T) []byte) func(*testing.T) []byte {
	return func(t *testing.T) []byte { b := f(t); return b[:len(b)/2] }
}

var (
	bombOnce  sync.Once
	bombBytes []byte
)

// bomb is 256 MiB of zeros gzipped to about a quarter of a megabyte: past
// every host cap once decoded (a whole body's 32 MiB, an export's 64 MiB).
func bomb(t *testing.T) []byte {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		require.NoError(t, err)
		zeros := make([]byte, 1<<20)
		for range 256 {
			_, err := w.Write(zeros)
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		bombBytes = buf.Bytes()
	})
	return bombBytes
}

func serveCoded(t *testing.T, w http.ResponseWriter, name string) {
	cr, ok := codedResponses[name]
	if !ok {
		http.NotFound(w, nil)
		return
	}
	for _, l := range cr.lines {
		w.Header().Add("Content-Encoding", l)
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(cr.body(t))
}

// testContentEncoding fetches every coded response whole (probe.batch,
// ctx.Fetch) and streamed (probe.stream, Transport), and requires the body
// as sent for identity, a fetch_error naming the coding for the rest, that
// every request asked for identity only, and that the host serves runs
// afterwards.
func testContentEncoding(t *testing.T, c *client, fake *fakeAPI) {
	names := make([]string, 0, len(codedResponses))
	for n := range codedResponses {
		names = append(names, n)
	}
	sort.Strings(names)
	asSent := func(name string) bool { return name == "identity" || name == "none" }
	refusal := func(name string) string {
		return fmt.Sprintf("refusing a response with Content-Encoding %q", strings.Join(codedResponses[name].lines, ", "))
	}
	before := c.visits(t, "encoding-alive", "e")

	t.Run("whole", func(t *testing.T) {
		urls := make([]string, len(names))
		for i, n := range names {
			urls[i] = fake.URL + "/coded/" + n
		}
		b, err := json.Marshal(map[string]any{"urls": urls})
		require.NoError(t, err)
		rs := c.run(t, "probe.batch", "encoding", string(b))["responses"].([]any)
		require.Len(t, rs, len(names))
		for i, n := range names {
			r := rs[i].(map[string]any)
			if asSent(n) {
				assert.Empty(t, r["error"], n)
				assert.EqualValues(t, 200, r["status"], n)
				assert.Equal(t, plainText, r["body"], n)
				continue
			}
			assert.Contains(t, r["error"], refusal(n), n)
			assert.Contains(t, r["error"], "fetch_error", n)
			assert.Empty(t, r["body"], "%s: no byte of the body", n)
		}
	})

	t.Run("streamed", func(t *testing.T) {
		sum := sha256.Sum256([]byte(plainText))
		for _, n := range names {
			r := c.post(t, "probe.stream", "encoding", fmt.Sprintf(`{"url":%q}`, fake.URL+"/coded/"+n))
			if asSent(n) {
				require.Equal(t, http.StatusOK, r.status, "%s: %s", n, r.body)
				res := r.json(t)["result"].(map[string]any)
				assert.Equal(t, hex.EncodeToString(sum[:]), res["sha256"], n)
				continue
			}
			require.Equal(t, http.StatusInternalServerError, r.status, "%s: %s", n, truncate(r.body))
			assert.Equal(t, "agent_error", r.errorType(t), n)
			assert.Contains(t, r.json(t)["error"].(map[string]any)["message"], refusal(n), n)
		}
	})

	for _, n := range names {
		assert.Equal(t, []string{"identity"}, fake.acceptEncoding("/coded/"+n), "%s: the host asks for identity, and only it", n)
	}
	// The host is still up: on workerd a decoder fed a corrupt body would
	// have taken every agent instance down with it.
	assert.Equal(t, before+1, c.visits(t, "encoding-alive", "e"))
}
