package local

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/hosttest"
)

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func deflated(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf) // HTTP's "deflate" is the zlib format
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// A server that owns the secret and echoes the credential it received,
// compressed, must not get it to the guest: the host asks for identity
// only, so Go's transport decodes nothing and drops no header, and every
// coding the server sends anyway is refused unread (internal/codings).
func TestCompressedResponsesAreRefused(t *testing.T) {
	secret := hosttest.FakeSecret(t)
	var accept atomic.Value
	// /allowed/<coding> answers the Authorization header it got, in that
	// coding, whether or not the request asked for it.
	api := hosttest.NewRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Values("Accept-Encoding"))
		echo := []byte("auth=" + r.Header.Get("Authorization"))
		coding := strings.TrimPrefix(r.URL.Path, "/allowed/")
		var body []byte
		switch coding {
		case "identity":
			body = echo
		case "gzip", "x-gzip", "br": // br: only the label matters to the host
			body = gzipped(t, echo)
		case "deflate":
			body = deflated(t, echo)
		case "gzip-gzip":
			coding, body = "gzip, gzip", gzipped(t, gzipped(t, echo))
		}
		w.Header().Set("Content-Encoding", coding)
		w.Write(body)
	})
	cfg := testConfig(t).
		WithTargets(map[string]string{"api": api.URL}).
		WithSecrets(func(name string) (string, bool) { return secret, name == "PROBE_API_TOKEN" })
	h := newHost(t, cfg)
	rng := map[string]string{"Range": "bytes=0-"}

	for _, tc := range []struct {
		name    string
		path    string
		headers map[string]string
		refused string // the coding the refusal names; empty: answered
	}{
		{"identity", "identity", nil, ""},
		{"identity with Range", "identity", rng, ""},
		{"gzip, unasked", "gzip", nil, `"gzip"`},
		{"gzip with Range", "gzip", rng, `"gzip"`},
		{"deflate, unasked", "deflate", nil, `"deflate"`},
		{"br, unasked", "br", nil, `"br"`},
		{"x-gzip", "x-gzip", nil, `"x-gzip"`},
		{"gzip, gzip", "gzip-gzip", nil, `"gzip, gzip"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runProbe(t, h, "probe.policy", "enc", map[string]any{"url": api.URL + "/allowed/" + tc.path, "headers": tc.headers}, &eventLog{})
			raw, err := json.Marshal(out)
			require.NoError(t, err)
			for _, e := range hosttest.Encodings(secret) {
				assert.NotContains(t, string(raw), e)
			}
			assert.Equal(t, []string{"identity"}, accept.Load(), "the host asks for identity, and only it")
			assert.Equal(t, false, out["denied"], "%v", out)
			if tc.refused == "" {
				assert.Empty(t, out["error"])
				assert.EqualValues(t, 200, out["status"])
				assert.Equal(t, "auth=Bearer [REDACTED:PROBE_API_TOKEN]", out["body"])
				assert.Equal(t, []any{"identity"}, out["headers"].(map[string]any)["Content-Encoding"])
				return
			}
			assert.Contains(t, out["error"], "refusing a response with Content-Encoding "+tc.refused)
			assert.Zero(t, out["status"])
			assert.Empty(t, out["body"])
		})
	}
}
