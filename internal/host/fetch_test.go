package host

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/damperdev/damper/internal/hosttest"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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
			p.transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
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
			assert.Zero(t, p.Counters().Streams.Load(), "no handle for a refused body")
		})
	}
}

// An interim (1xx) response that comes back as the answer is refused, its
// body unread: Go's transport hands over a 101's raw connection, workerd a
// 103 with the real response as its body.
func TestInterimResponseIsRefused(t *testing.T) {
	for _, code := range []int{100, 101, 103, 199} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d stream=%v", code, stream), func(t *testing.T) {
				body := &closeCounter{Reader: strings.NewReader("HTTP/1.1 200 OK\r\n\r\nwhat follows")}
				p, tk := performerTask(t)
				p.transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: code, Header: http.Header{}, Body: body}, nil
				})
				_, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: "https://api.example/", Stream: stream})
				require.NotNil(t, werr)
				assert.Equal(t, wire.ErrFetch, werr.Type)
				assert.Equal(t, fmt.Sprintf("refusing an interim response (status %d) as the answer: the host never reads what follows one", code), werr.Message)
				assert.EqualValues(t, 1, body.closed.Load())
				assert.Zero(t, p.Counters().Streams.Load())
			})
		}
	}
}

// rawServer answers every connection with the bytes resp, whatever it was
// asked, and closes it.
func rawServer(t *testing.T, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, resp)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// A header field name that is not a token is refused: Go's transport keeps
// "Content-Encoding " (a space before the colon) as a name of its own, so
// the coding check would pass a gzip body that other parsers call gzip.
func TestMalformedHeaderNameIsRefused(t *testing.T) {
	gz := "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not really"
	for _, head := range []string{"Content-Encoding : gzip", "Content-Encoding\t: gzip", "X Y: 1"} {
		url := rawServer(t, fmt.Sprintf("HTTP/1.1 200 OK\r\n%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", head, len(gz), gz))
		for _, stream := range []bool{false, true} {
			p, tk := performerTask(t)
			v, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: url + "/", Stream: stream})
			require.NotNil(t, werr, "%q: %s", head, v)
			assert.Equal(t, wire.ErrFetch, werr.Type)
		}
	}
}

// The default transport reads at most MaxResponseHead of a response's head,
// as workerd does; Go's own default is 10 MiB, held outside the body
// budget.
func TestResponseHeadIsBounded(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{MaxResponseHead - 1024, true}, {MaxResponseHead + 1, false}, {8 << 20, false}} {
		url := rawServer(t, "HTTP/1.1 200 OK\r\nX-Huge: "+strings.Repeat("h", tc.n)+"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		p, err := policy.New(policy.NewService("api", "https://api.example").Level(policy.AllowAll))
		require.NoError(t, err)
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		c, err := New(wire.Manifest{ABI: wire.Version, Agents: []wire.AgentEntry{{Name: "a", Policy: raw}}},
			Options{Logger: testLogger(t), Targets: map[string]string{"api": url}})
		require.NoError(t, err)
		inst := c.NewInstance("a", "i", "")
		tk := c.NewTask("t", "r", inst, testLogger(t))
		_, werr := perform(t, c, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: url + "/"})
		tk.Release()
		inst.Close()
		if tc.ok {
			assert.Nil(t, werr, "%d bytes of header", tc.n)
			continue
		}
		require.NotNil(t, werr, "%d bytes of header", tc.n)
		assert.Contains(t, werr.Message, "headers exceeded")
	}
}

// The engine never passes a host-owned header, but a module that bypassed
// it must not get one sent either: a Host header would address the server
// as another host than the one the secret was substituted for.
func TestHostOwnedHeadersAreRefused(t *testing.T) {
	srv := hosttest.NewRecorder(t, nil)
	pol, err := policy.New(policy.NewService("api", "https://api.example").Credential("Authorization", "Bearer ${secret:API_TOKEN}"))
	require.NoError(t, err)
	s := secretsFor(t, pol, map[string]string{"api": srv.URL}, map[string]string{"API_TOKEN": hosttest.FakeSecret(t)})
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
			assert.Empty(t, srv.Requests(), "never sent")
		})
	}
}

func TestCollectorOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318/v1/traces": "http://127.0.0.1:4318",
		"HTTPS://Collector.Example:443/x": "https://collector.example",
		"https://collector.example/v1":    "https://collector.example",
		"http://collector.example:80/":    "http://collector.example",
		"http://[::1]:4318/v1/traces":     "http://[::1]:4318",
		"not a url":                       "",
		"/v1/traces":                      "",
	} {
		assert.Equal(t, want, collectorOrigin(&wire.Telemetry{Endpoint: in}), in)
	}
	assert.Empty(t, collectorOrigin(nil))
}

// A request to the telemetry collector (the span export, which carries
// what the model said when content capture is on) goes out scrubbed of
// the agent's secrets: the collector owns none.
func TestCollectorRequestsAreScrubbed(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
	}))
	t.Cleanup(srv.Close)
	secret := hosttest.FakeSecret(t)
	pol, err := policy.New(policy.NewService("api", "https://api.example").Credential("Authorization", "Bearer ${secret:API_TOKEN}"))
	require.NoError(t, err)
	s := secretsFor(t, pol, nil, map[string]string{"API_TOKEN": secret})
	p, tk := performerTask(t)
	tk.secrets = s
	p.collector = collectorOrigin(&wire.Telemetry{Endpoint: srv.URL + "/v1/traces"})
	body := `{"gen_ai.output.messages":"the key is ` + secret + ` and ` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}`
	_, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "POST", URL: srv.URL + "/v1/traces", Body: []byte(body)})
	require.Nil(t, werr)
	require.Len(t, got, 1)
	assert.NotContains(t, got[0], secret)
	assert.NotContains(t, got[0], base64.StdEncoding.EncodeToString([]byte(secret)))
	assert.Equal(t, `{"gen_ai.output.messages":"the key is [REDACTED:API_TOKEN] and [REDACTED:API_TOKEN]"}`, got[0])
}
