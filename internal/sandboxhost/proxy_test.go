package sandboxhost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// fixedEgress allows everything and answers "ok", recording what it was
// asked: the proxy alone, without a module.
type fixedEgress struct{ got []wire.EgressRequest }

func (f *fixedEgress) egress(_ context.Context, _, _ string, req wire.EgressRequest) (*Outcome, error) {
	f.got = append(f.got, req)
	if strings.Contains(req.URL, "/deny") {
		return &Outcome{Decision: wire.EgressDecision{Reason: "deny-level", Method: req.Method, URL: req.URL}}, nil
	}
	return &Outcome{Decision: wire.EgressDecision{Allow: true}, Status: 200, Header: []wire.Header{{"content-type", "text/plain"}, {"content-length", "99"}}, Body: io.NopCloser(strings.NewReader("ok"))}, nil
}

func proxyClient(t testing.TB, f *fixedEgress) *http.Client {
	ca, err := newAuthority()
	require.NoError(t, err)
	p := newProxy("a", "i", f.egress, ca, slog.New(slog.DiscardHandler))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go p.serve(l)
	t.Cleanup(p.close)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.certPEM)
	pu, _ := url.Parse("http://" + l.Addr().String())
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// The proxy hands HTTP requests and the requests inside a CONNECT tunnel
// to Egress, without their hop-by-hop and proxy headers, and answers a
// denial with 403 and the decision.
func TestProxy(t *testing.T) {
	f := &fixedEgress{}
	c := proxyClient(t, f)
	for _, u := range []string{"http://api.example.test/x?q=1", "https://api.example.test/y", "https://api.example.test:8443/z"} {
		req, _ := http.NewRequest("POST", u, strings.NewReader("body"))
		req.Header.Set("X-Mine", "1")
		req.Header.Set("Proxy-Authorization", "Basic eA==")
		resp, err := c.Do(req)
		require.NoError(t, err, u)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "ok", string(b))
		assert.Equal(t, int64(-1), resp.ContentLength, "scrubbing may change the length: no Content-Length")
	}
	require.Len(t, f.got, 3)
	assert.Equal(t, []string{"http://api.example.test/x?q=1", "https://api.example.test/y", "https://api.example.test:8443/z"},
		[]string{f.got[0].URL, f.got[1].URL, f.got[2].URL})
	for _, g := range f.got {
		assert.Equal(t, "POST", g.Method)
		assert.Equal(t, "body", string(g.Body))
		var names []string
		for _, h := range g.Headers {
			names = append(names, http.CanonicalHeaderKey(h[0]))
		}
		assert.Contains(t, names, "X-Mine")
		assert.NotContains(t, names, "Proxy-Authorization")
		assert.NotContains(t, names, "Host")
	}
	resp, err := c.Get("https://api.example.test/deny")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode)
	assert.Contains(t, string(b), `"policy_denied"`)
	assert.Contains(t, string(b), `"deny-level"`)
}

// A TLS handshake for another name than the CONNECT's host fails: the
// policy decides on the CONNECT's host, so a request may not mean another.
func TestProxyRefusesAnotherServerName(t *testing.T) {
	f := &fixedEgress{}
	c := proxyClient(t, f)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig.ServerName = "evil.example.test"
	_, err := c.Get("https://api.example.test/y")
	require.Error(t, err)
	assert.Empty(t, f.got)
}

// BenchmarkProxy is one request through the egress proxy over a kept-alive
// connection, with a decision that costs nothing: the proxy's own part of
// a sandbox request's added latency (HTTPS: inside one CONNECT tunnel).
func BenchmarkProxy(b *testing.B) {
	for _, scheme := range []string{"http", "https"} {
		b.Run(scheme, func(b *testing.B) {
			c := proxyClient(b, &fixedEgress{})
			for b.Loop() {
				resp, err := c.Get(scheme + "://api.example.test/x")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
