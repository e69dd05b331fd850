package local

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
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
	secret := fakeSecret(t)
	var accept atomic.Value
	// /allowed/<coding> answers the Authorization header it got, in that
	// coding, whether or not the request asked for it.
	api := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
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
			for _, e := range encodings(secret) {
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

// closeCounter is a response body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestEncodedResponseBodyIsClosed(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			body := &closeCounter{Reader: strings.NewReader("compressed")}
			p, tk := performerTask(t)
			p.fetcher = FetcherFunc(func(context.Context, wire.FetchArgs) (*http.Response, error) {
				h := http.Header{}
				h.Add("Content-Encoding", "identity")
				h.Add("Content-Encoding", "zstd")
				return &http.Response{StatusCode: 200, Header: h, Body: body}, nil
			})
			_, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: "https://api.example/", Stream: stream})
			require.NotNil(t, werr)
			assert.Equal(t, wire.ErrFetch, werr.Type)
			assert.Contains(t, werr.Message, `Content-Encoding "identity, zstd"`)
			assert.EqualValues(t, 1, body.closed.Load())
			assert.Zero(t, tk.counters.streams.Load(), "no handle for a refused body")
		})
	}
}

// The engine never passes a host-owned header, but a module that bypassed
// it must not get one sent either: a Host header would address the server
// as another host than the one the secret was substituted for.
func TestHostOwnedHeadersAreRefused(t *testing.T) {
	srv := newRecorder(t, nil)
	pol, err := policy.New(policy.NewService("api", "https://api.example").Credential("Authorization", "Bearer ${secret:API_TOKEN}"))
	require.NoError(t, err)
	s := secretsFor(t, pol, map[string]string{"api": srv.URL}, map[string]string{"API_TOKEN": fakeSecret(t)})
	for _, h := range []wire.Header{
		{"Host", "elsewhere.example"},
		{"host", "elsewhere.example"},
		{"Accept-Encoding", "gzip"},
		{"Transfer-Encoding", "chunked"},
		{"Content-Length", "0"},
		{"Connection", "close"},
		{"Proxy-Authorization", "Basic x"},
		{"X-Forwarded-Host", "elsewhere.example"},
	} {
		t.Run(h[0], func(t *testing.T) {
			p, tk := performerTask(t)
			tk.secrets = s
			headers := []wire.Header{{"Authorization", "Bearer ${secret:API_TOKEN}"}, h}
			_, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: srv.URL + "/", Headers: headers})
			require.NotNil(t, werr)
			assert.Equal(t, wire.ErrFetch, werr.Type)
			assert.Contains(t, werr.Message, fmt.Sprintf("%q header is set by the host", h[0]))
			assert.Empty(t, srv.requests(), "never sent")
		})
	}
}
