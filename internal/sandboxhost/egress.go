package sandboxhost

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// MaxEgressBody bounds the body of a request a sandbox sends out: the
// policy reads it whole (its body matchers), so it crosses into the
// module.
const MaxEgressBody = 8 << 20

// Egress decides one request of the sandbox of agent instance (agent,
// id) with the agent's policy (a wire.KindEgress task in its module) and,
// when the policy allows it, sends it through the host's fetch path. The
// host that runs the module implements it.
type Egress func(ctx context.Context, agent, id string, req wire.EgressRequest) (*Outcome, error)

// Outcome is what became of an egress request: the decision, and for an
// allowed request the response, its headers and body scrubbed of the
// agent's secrets.
type Outcome struct {
	Decision wire.EgressDecision
	Status   int
	Header   []wire.Header
	Body     io.ReadCloser
}

// proxy is the egress proxy of one agent instance's sandbox: an HTTP
// proxy (absolute-form requests, and CONNECT, answered with TLS under the
// host's interception CA) that hands every request to Egress.
type proxy struct {
	agent, id string
	egress    Egress
	ca        *authority
	log       *slog.Logger
	srv       *http.Server
}

func newProxy(agent, id string, egress Egress, ca *authority, log *slog.Logger) *proxy {
	p := &proxy{agent: agent, id: id, egress: egress, ca: ca, log: log}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	return p
}

func (p *proxy) serve(l net.Listener) { _ = p.srv.Serve(l) }

func (p *proxy) close() { p.srv.Close() }

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		egressError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("damper's egress proxy takes absolute http:// URLs and CONNECT for https, not %q", r.RequestURI))
		return
	}
	p.forward(w, r, "http://"+r.URL.Host+r.URL.RequestURI())
}

// connect answers a CONNECT with TLS of its own, under a certificate the
// interception CA signs for the host asked for, and serves the requests
// inside as https requests to that host.
func (p *proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		egressError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("CONNECT %q: want host:port", r.Host))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		egressError(w, http.StatusInternalServerError, "egress_error", "cannot take over the connection")
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	var c net.Conn = conn
	if buf.Reader.Buffered() > 0 {
		c = &prefixed{Conn: conn, r: buf.Reader}
	}
	tc := tls.Server(c, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName != "" && !strings.EqualFold(hello.ServerName, host) {
				// The URL the policy decides on is the CONNECT's host:
				// a handshake for another name would be decided on one
				// and mean another.
				return nil, fmt.Errorf("TLS server name %q is not the CONNECT host %q", hello.ServerName, host)
			}
			return p.ca.leaf(strings.ToLower(host))
		},
	})
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		p.log.Debug("egress: TLS handshake", "host", r.Host, "err", err)
		return
	}
	tc.SetDeadline(time.Time{})
	origin := "https://" + strings.ToLower(host)
	if port != "443" {
		origin += ":" + port
	}
	inner := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.forward(w, r, origin+r.URL.RequestURI())
		}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          p.srv.ErrorLog,
	}
	l := &oneConn{c: tc, done: make(chan struct{})}
	_ = inner.Serve(l)
	<-l.done
}

// forward decides and sends one request to url.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request, url string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxEgressBody+1))
	if err != nil {
		egressError(w, http.StatusBadRequest, "bad_request", "read the request body: "+err.Error())
		return
	}
	if len(body) > MaxEgressBody {
		egressError(w, http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("a sandbox's request body may hold at most %d bytes: the policy reads it whole", MaxEgressBody))
		return
	}
	req := wire.EgressRequest{Method: r.Method, URL: url, Body: body}
	for name, vs := range r.Header {
		// Framing, hop-by-hop and proxy fields are the proxy's and the
		// host's, never the request's (policy.HostOwnedHeader).
		if policy.HostOwnedHeader(name) {
			continue
		}
		for _, v := range vs {
			req.Headers = append(req.Headers, wire.Header{name, v})
		}
	}
	out, err := p.egress(r.Context(), p.agent, p.id, req)
	if err != nil {
		egressError(w, http.StatusBadGateway, "egress_error", err.Error())
		return
	}
	if !out.Decision.Allow {
		d := out.Decision
		msg := fmt.Sprintf("damper: the policy of agent %s denied %s %s: %s", p.agent, orDash(d.Method, r.Method), orDash(d.URL, url), d.Reason)
		if d.Rule != "" {
			msg += " (rule " + d.Rule + ")"
		}
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"type": "policy_denied", "message": msg}, "decision": d})
		return
	}
	defer out.Body.Close()
	for _, h := range out.Header {
		if hopByHop(h[0]) || strings.EqualFold(h[0], "content-length") {
			continue // scrubbing may change the length: the body goes chunked
		}
		w.Header().Add(h[0], h[1])
	}
	w.WriteHeader(out.Status)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := out.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

func orDash(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func hopByHop(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

func egressError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// prefixed is a connection whose first bytes a bufio.Reader already read.
type prefixed struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixed) Read(b []byte) (int, error) { return p.r.Read(b) }

// oneConn is a listener of one connection, for serving HTTP inside a
// CONNECT tunnel; done closes when that connection does.
type oneConn struct {
	mu   sync.Mutex
	c    net.Conn
	done chan struct{}
	once sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c == nil {
		<-l.done
		return nil, net.ErrClosed
	}
	return &closeNotify{Conn: c, l: l}, nil
}

func (l *oneConn) Close() error     { return nil }
func (l *oneConn) Addr() net.Addr   { return &net.UnixAddr{Name: "tunnel", Net: "unix"} }
func (l *oneConn) closed()          { l.once.Do(func() { close(l.done) }) }
func (c *closeNotify) Close() error { err := c.Conn.Close(); c.l.closed(); return err }

type closeNotify struct {
	net.Conn
	l *oneConn
}
