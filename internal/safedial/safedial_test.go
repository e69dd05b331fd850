package safedial_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/damperdev/damper/internal/safedial"
)

// fakeDNS is a DNS server on loopback UDP that answers A and AAAA queries
// from a table, so names resolve as an attacker's DNS would make them
// without the internet. Every other name does not exist.
type fakeDNS struct {
	conn net.PacketConn
	mu   sync.Mutex
	recs map[string][]netip.Addr // fully qualified, lower case
}

func startDNS(t *testing.T, recs map[string][]netip.Addr) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &fakeDNS{conn: conn, recs: recs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := s.answer(buf[:n]); err == nil {
				conn.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *fakeDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	addrs, known := s.recs[strings.ToLower(q.Name.String())]
	s.mu.Unlock()
	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: rcode})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// resolver sends every DNS query to the fake server.
func (s *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestTransportOnLoopback: a transport built with the Dialer refuses every
// name and spelling that leads to a loopback server, and reaches it at the
// one origin the configuration names.
func TestTransportOnLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fake API at "+r.Host)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := startDNS(t, map[string][]netip.Addr{
		"127.0.0.1.nip.io.":      addrs("127.0.0.1"),
		"localhost.":             addrs("127.0.0.1", "::1"),
		"api.example.test.":      addrs("127.0.0.1"),
		"v6.example.test.":       addrs("::1"),
		"mapped.example.test.":   addrs("::ffff:127.0.0.1"),
		"metadata.example.test.": addrs("169.254.169.254"),
		"lan.example.test.":      addrs("192.168.1.20", "10.0.0.7"),
	})

	allowed := fmt.Sprintf("http://api.example.test:%d", port)
	d, err := safedial.New([]string{allowed, fmt.Sprintf("http://[::1]:%d", port+1)})
	require.NoError(t, err)
	d.Resolver = dns.resolver()
	client := &http.Client{Transport: d.Transport()}

	get := func(rawURL string) (string, error) {
		resp, err := client.Get(rawURL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// The named origin is reached, though it resolves to loopback.
	body, err := get(allowed + "/v1/x")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("fake API at api.example.test:%d", port), body)
	body, err = get(fmt.Sprintf("http://API.Example.Test.:%d/v1/x", port))
	require.NoError(t, err, "one origin, spelled otherwise")
	assert.Contains(t, body, "fake API")

	for _, tc := range []struct {
		url, ip, why string
	}{
		{fmt.Sprintf("http://127.0.0.1:%d/", port), "127.0.0.1", "loopback"},
		{fmt.Sprintf("http://localhost:%d/", port), "", "loopback"},
		{fmt.Sprintf("http://127.0.0.1.nip.io:%d/", port), "127.0.0.1", "loopback"},
		{fmt.Sprintf("http://v6.example.test:%d/", port), "::1", "loopback"},
		{fmt.Sprintf("http://[::1]:%d/", port), "::1", "loopback"},
		{fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port), "127.0.0.1", "loopback"},
		{fmt.Sprintf("http://mapped.example.test:%d/", port), "127.0.0.1", "loopback"},
		{"http://metadata.example.test/latest/meta-data/", "169.254.169.254", "metadata"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", "metadata"},
		{"http://lan.example.test/", "", "private"},
		{"http://[fe80::1%25lo]/", "fe80::1%lo", "link-local"},
		{"http://0.0.0.0/", "0.0.0.0", "unspecified"},
		// The allowlist names a host and a port, not an address.
		{fmt.Sprintf("http://api.example.test:%d/", port+1), "127.0.0.1", "loopback"},
		{fmt.Sprintf("https://api.example.test:%d/", port+1), "127.0.0.1", "loopback"},
		{fmt.Sprintf("http://[::1]:%d/", port), "::1", "loopback"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := get(tc.url)
			require.Error(t, err)
			var refused *safedial.RefusedError
			require.True(t, errors.As(err, &refused), "%v", err)
			assert.Contains(t, refused.Why, tc.why)
			if tc.ip != "" {
				assert.Equal(t, tc.ip, refused.IP.String())
			}
			u, _ := url.Parse(tc.url)
			msg := err.Error()
			assert.Contains(t, msg, refused.IP.String(), "the message names the address")
			assert.Contains(t, msg, tc.why, "and why")
			assert.Contains(t, msg, "--target NAME=http://"+u.Host, "and how to allow it")
			assert.Contains(t, msg, "DAMPER_TARGETS")
		})
	}
}

// The allowlist is origins as targets spell them; anything else is a
// mistake in the configuration, refused when the Dialer is built.
func TestNewRefusesBadOrigins(t *testing.T) {
	for _, o := range []string{"localhost:8080", "ftp://127.0.0.1:21", "http://", "http://127.0.0.1:8080/v1", "http://u@127.0.0.1:8080", "http://127.0.0.1:8080?x", "http://[::1"} {
		_, err := safedial.New([]string{o})
		assert.ErrorContains(t, err, o, o)
	}
	d, err := safedial.New([]string{"https://127.0.0.1", "http://[0:0::1]:8080", "http://LocalHost.:9000/"})
	require.NoError(t, err)
	require.NotNil(t, d)
}

// Default ports and spellings of allowed origins: the dial of each is
// let through (it reaches a loopback listener), where an unnamed twin is
// refused.
func TestAllowedSpellings(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dns := startDNS(t, map[string][]netip.Addr{"fake.test.": addrs("127.0.0.1")})
	d, err := safedial.New([]string{fmt.Sprintf("http://FAKE.test.:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)})
	require.NoError(t, err)
	d.Resolver = dns.resolver()
	ctx := context.Background()
	for _, addr := range []string{fmt.Sprintf("fake.test:%d", port), fmt.Sprintf("127.0.0.1:%d", port)} {
		c, err := d.DialContext(ctx, "tcp", addr)
		require.NoError(t, err, addr)
		c.Close()
	}
	_, err = d.DialContext(ctx, "tcp", fmt.Sprintf("localhost:%d", port))
	var refused *safedial.RefusedError
	require.ErrorAs(t, err, &refused)
	_, err = d.DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	require.ErrorContains(t, err, "only TCP")
}
