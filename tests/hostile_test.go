package tests

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostileServer is an origin on loopback that answers with raw bytes of
// its choosing, well-formed HTTP or not: one request per connection, read
// with net/http's parser, answered by a handler that writes to the
// connection itself (and may pause, or never finish). It records every
// request it reads.
type hostileServer struct {
	ln      net.Listener
	URL     string // http://127.0.0.1:PORT
	handler func(c *rawConn, r *http.Request, body []byte)

	mu   sync.Mutex
	reqs []recorded
	wg   sync.WaitGroup
	done chan struct{}
}

// recorded is a request as the origin received it: the request line's
// target, the header fields as sent, and the body.
type recorded struct {
	Method, Target string
	Header         http.Header
	Body           string
}

// text is everything the origin received, for searching it for secrets.
func (r recorded) text() string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.Target + "\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString(r.Body)
	return b.String()
}

// rawConn is the connection a handler answers on.
type rawConn struct {
	net.Conn
	done <-chan struct{}
}

// write sends s at once (the connection is not buffered).
func (c *rawConn) write(s string) error {
	_, err := io.WriteString(c.Conn, s)
	return err
}

// pause waits d, or less if the server is closing.
func (c *rawConn) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-c.done:
	}
}

func newHostileServer(t *testing.T, handler func(c *rawConn, r *http.Request, body []byte)) *hostileServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &hostileServer{ln: ln, URL: "http://" + ln.Addr().String(), handler: handler, done: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *hostileServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			// Whatever a handler does, a connection ends with the server.
			go func() { <-s.done; conn.Close() }()
			r, err := http.ReadRequest(bufio.NewReader(conn))
			if err != nil {
				return
			}
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			s.mu.Lock()
			s.reqs = append(s.reqs, recorded{Method: r.Method, Target: r.RequestURI, Header: r.Header.Clone(), Body: string(body)})
			s.mu.Unlock()
			s.handler(&rawConn{Conn: conn, done: s.done}, r, body)
		}()
	}
}

func (s *hostileServer) close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	s.wg.Wait()
}

// take returns the requests recorded since the last take.
func (s *hostileServer) take() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reqs
	s.reqs = nil
	return r
}
