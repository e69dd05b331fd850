// Package safedial connects the local host's HTTP requests only to public
// addresses, unless the configuration names the target.
//
// The policy engine decides on a URL's host name; DNS decides where that
// name leads, and can change its answer between the decision and the
// connection (DNS rebinding), or point a public-looking name at 127.0.0.1,
// the cloud metadata address or the LAN. The Dialer checks the address it
// is about to connect to, after resolution, on every connection, and
// refuses any that is not public (see Classify). The origins the
// configuration names, such as a service target pointed at a loopback fake
// with DAMPER_TARGETS or --target, are dialed without the check: the
// operator chose them.
package safedial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Dialer dials TCP connections to public addresses, and to the allowed
// origins whatever their addresses. Build it with New; it is safe for
// concurrent use once built.
type Dialer struct {
	// Resolver resolves host names; nil is net.DefaultResolver. Set it
	// before the first dial.
	Resolver *net.Resolver

	allow map[string]bool // "host:port", host lower-case, IPs in canonical form
}

// New returns a Dialer that connects anywhere public, and also to exactly
// the allowed origins: "scheme://host[:port]" as targets are written
// ("http://127.0.0.1:8080", "http://localhost:9000"; the scheme gives the
// default port). An origin allows its host name and port as the URL spells
// them, not the addresses the name resolves to nor other names for them.
func New(allow []string) (*Dialer, error) {
	d := &Dialer{allow: map[string]bool{}}
	for _, o := range allow {
		key, err := originKey(o)
		if err != nil {
			return nil, fmt.Errorf("safedial: allowed origin %q: %w", o, err)
		}
		d.allow[key] = true
	}
	return d, nil
}

func originKey(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", err
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", errors.New("want scheme://host[:port] with scheme http or https")
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("want scheme://host[:port] with no userinfo, path, query or fragment")
	}
	return hostPortKey(u.Hostname(), port), nil
}

// hostPortKey spells a host and port one way: names in lower case without
// a trailing dot, IP addresses in canonical form.
func hostPortKey(host, port string) string {
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
	}
	return net.JoinHostPort(host, port)
}

// allowed reports whether addr ("host:port", as a dial gets it) is one of
// the allowed origins, which skip the address check.
func (d *Dialer) allowed(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	return err == nil && d.allow[hostPortKey(host, port)]
}

// DialContext connects to addr on a TCP network ("tcp", "tcp4", "tcp6"),
// like net.Dialer.DialContext. Unless addr is an allowed origin, it
// refuses each address addr resolves to that is not public, when it is
// about to connect to it; the error then wraps a *RefusedError.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("safedial: dial %s %s: only TCP is dialed", network, addr)
	}
	nd := net.Dialer{Resolver: d.Resolver}
	if !d.allowed(addr) {
		nd.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			return check(addr, address)
		}
	}
	return nd.DialContext(ctx, network, addr)
}

// check refuses the resolved address ("ip:port") of a dial to addr unless
// it is public.
func check(addr, resolved string) error {
	ap, err := netip.ParseAddrPort(resolved)
	if err != nil {
		return &RefusedError{Addr: addr, Why: fmt.Sprintf("unreadable address %q", resolved)}
	}
	if public, why := Classify(ap.Addr()); !public {
		return &RefusedError{Addr: addr, IP: ap.Addr(), Why: why}
	}
	return nil
}

// Transport returns a clone of http.DefaultTransport that dials with d and
// uses no proxy, so the address checked is the address contacted.
func (d *Dialer) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	return t
}

// RefusedError is a connection the Dialer refused: Addr resolved to IP,
// which is not public.
type RefusedError struct {
	// Addr is the dialed "host:port".
	Addr string
	// IP is the refused address; the zero Addr when it could not be read.
	IP netip.Addr
	// Why is what the address is, such as "a loopback address".
	Why string
}

func (e *RefusedError) Error() string {
	what := e.Why
	if e.IP.IsValid() {
		what = fmt.Sprintf("%s is %s", e.IP, e.Why)
	}
	return fmt.Sprintf("safedial: refused to connect to %s: %s, and the host connects only to public addresses "+
		"unless the configuration names the target; to allow it, name it with --target NAME=http://%s "+
		"or DAMPER_TARGETS=NAME=http://%s (or https://)", e.Addr, what, e.Addr, e.Addr)
}
