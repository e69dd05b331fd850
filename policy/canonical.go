package policy

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// maxURLLen bounds the input so that canonicalization cost is bounded; no API
// the presets talk to needs longer URLs.
const maxURLLen = 8192

// urlError is why a URL has no canonical form. It is a string type so that
// returning one does not allocate on the decision path.
type urlError string

func (e urlError) Error() string { return string(e) }

// The reasons a URL is refused before any service is consulted. Each names
// something that two URL parsers could read differently, or that no service
// needs.
const (
	errEmptyURL       urlError = "empty URL"
	errTooLong        urlError = "URL longer than 8192 bytes, before or after canonicalization"
	errControl        urlError = "control character, space or NUL in URL"
	errBackslash      urlError = "backslash in URL"
	errUTF8           urlError = "URL is not valid UTF-8"
	errScheme         urlError = "scheme must be http or https followed by //"
	errUserinfo       urlError = "userinfo (user:password@) in URL"
	errHostEncoding   urlError = "percent-encoding in host"
	errHost           urlError = "malformed host"
	errIDNA           urlError = "host fails IDNA processing"
	errIPv4           urlError = "malformed IPv4 address"
	errIPv6           urlError = "malformed IPv6 address"
	errPort           urlError = "malformed port"
	errPercent        urlError = "malformed percent-encoding"
	errEncodedBS      urlError = "encoded backslash (%5C) in path"
	errEncodedControl urlError = "encoded control character in path"
	errEncodedNUL     urlError = "encoded NUL (%00) in URL"
	errDoubleEncoding urlError = "double percent-encoding (%25XX) in path"
	errSemicolon      urlError = "semicolon (path parameter) in path"
	errDotBehindSlash urlError = "dot segment behind an encoded slash in path"
)

// urlParts is a canonical URL and where its pieces are. Offsets index url.
type urlParts struct {
	url          string
	https        bool
	hostStart    int
	hostEnd      int
	pathStart    int // also where the origin ends
	pathEnd      int
	queryStart   int // first byte after '?', or -1
	ip           bool
	encodedSlash bool // the path holds %2F
}

func (u *urlParts) origin() string { return u.url[:u.pathStart] }
func (u *urlParts) host() string   { return u.url[u.hostStart:u.hostEnd] }
func (u *urlParts) path() string   { return u.url[u.pathStart:u.pathEnd] }

// port returns the explicit port, "" for the scheme's default.
func (u *urlParts) port() string {
	if u.hostEnd < u.pathStart {
		return u.url[u.hostEnd+1 : u.pathStart]
	}
	return ""
}

func (u *urlParts) query() string {
	if u.queryStart < 0 {
		return ""
	}
	return u.url[u.queryStart:]
}

// Canonicalize returns the canonical form of an http or https URL: the one
// spelling the engine decides on and the host sends. It fails on every URL
// that is ambiguous or that no service needs (see the package documentation).
//
// Canonicalize keeps an encoded slash (%2F) in the path; the engine refuses
// it unless the service that owns the host keeps encoded slashes opaque.
func Canonicalize(rawURL string) (string, error) {
	var scratch [512]byte
	u, err := canonicalize(rawURL, scratch[:0])
	if err != nil {
		return "", fmt.Errorf("policy: canonicalize %q: %w", rawURL, err)
	}
	return u.url, nil
}

// IsCanonical reports whether u is already canonical. A canonical URL is a
// fixed point of WHATWG URL parsing (new URL(u).href === u), so a host that
// sends only canonical URLs sends what the engine decided on. It is the Go
// counterpart of the Workers host's check.
func IsCanonical(u string) bool {
	var scratch [512]byte
	p, err := canonicalize(u, scratch[:0])
	return err == nil && p.url == u
}

// Origin returns the origin ("scheme://host[:port]") of a canonical URL,
// the form Engine.Owns takes, and "" for a URL that is not
// canonical: a host sends only canonical URLs, so it never has to guess.
func Origin(u string) string {
	var scratch [512]byte
	p, err := canonicalize(u, scratch[:0])
	if err != nil || p.url != u {
		return ""
	}
	return p.origin()
}

// canonicalize parses raw and writes its canonical form into buf, returning
// raw itself when it was already canonical so that the common case does not
// allocate.
func canonicalize(raw string, buf []byte) (urlParts, error) {
	var u urlParts
	if raw == "" {
		return u, errEmptyURL
	}
	if len(raw) > maxURLLen {
		return u, errTooLong
	}
	ascii := true
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c <= ' ' || c == 0x7f:
			// WHATWG strips some of these silently and keeps others;
			// servers differ too. None belongs in a request we send.
			return u, errControl
		case c == '\\':
			// WHATWG reads a backslash as a slash in http(s) URLs; other
			// parsers keep it. Refusing it removes the disagreement.
			return u, errBackslash
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(raw) {
		return u, errUTF8
	}

	var rest string
	switch {
	case hasPrefixFold(raw, "https://"):
		u.https, rest = true, raw[len("https://"):]
		buf = append(buf, "https://"...)
	case hasPrefixFold(raw, "http://"):
		rest = raw[len("http://"):]
		buf = append(buf, "http://"...)
	default:
		// This also refuses "https:host" and "https:/host", which WHATWG
		// repairs and most other parsers do not.
		return u, errScheme
	}

	authEnd := indexAny3(rest, '/', '?', '#')
	var err error
	if buf, err = appendAuthority(buf, rest[:authEnd], u.https, &u); err != nil {
		return u, err
	}
	u.pathStart = len(buf)
	rest = rest[authEnd:]

	pathEnd := indexAny3(rest, '?', '#', '#')
	if buf, err = appendPath(buf, rest[:pathEnd], &u.encodedSlash); err != nil {
		return u, err
	}
	u.pathEnd = len(buf)
	rest = rest[pathEnd:]

	u.queryStart = -1
	if rest != "" && rest[0] == '?' {
		q := rest[1:]
		if i := strings.IndexByte(q, '#'); i >= 0 {
			q = q[:i]
		}
		if q != "" {
			buf = append(buf, '?')
			u.queryStart = len(buf)
			if buf, err = appendQuery(buf, q); err != nil {
				return u, err
			}
		}
	}
	// A fragment is never sent; dropping it keeps it out of the decision.

	if len(buf) > maxURLLen {
		// Escaping can triple a URL; the limit holds for what is sent.
		return u, errTooLong
	}
	if string(buf) == raw {
		u.url = raw
	} else {
		u.url = string(buf)
	}
	return u, nil
}

// indexAny3 is the index of the first of a, b or c in s, or len(s).
func indexAny3(s string, a, b, c byte) int {
	for i := 0; i < len(s); i++ {
		if x := s[i]; x == a || x == b || x == c {
			return i
		}
	}
	return len(s)
}

func appendAuthority(buf []byte, auth string, https bool, u *urlParts) ([]byte, error) {
	if strings.IndexByte(auth, '@') >= 0 {
		return buf, errUserinfo
	}
	if strings.IndexByte(auth, '%') >= 0 {
		return buf, errHostEncoding
	}
	host, port := auth, ""
	if strings.HasPrefix(auth, "[") {
		end := strings.IndexByte(auth, ']')
		if end < 0 {
			return buf, errIPv6
		}
		host = auth[:end+1]
		switch after := auth[end+1:]; {
		case after == "":
		case after[0] == ':':
			port = after[1:]
		default:
			return buf, errHost
		}
	} else if i := strings.IndexByte(auth, ':'); i >= 0 {
		host, port = auth[:i], auth[i+1:]
		if strings.IndexByte(port, ':') >= 0 {
			return buf, errHost
		}
	}
	u.hostStart = len(buf)
	var err error
	if buf, u.ip, err = appendHost(buf, host); err != nil {
		return buf, err
	}
	u.hostEnd = len(buf)
	return appendPort(buf, port, https)
}

// appendPort writes ":port" unless the port is the scheme's default. WHATWG
// accepts an empty port and leading zeros; both have one meaning, so they are
// normalized rather than refused.
func appendPort(buf []byte, port string, https bool) ([]byte, error) {
	if port == "" {
		return buf, nil
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return buf, errPort
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return buf, errPort
		}
	}
	if n == 0 {
		return buf, errPort
	}
	if (https && n == 443) || (!https && n == 80) {
		return buf, nil
	}
	buf = append(buf, ':')
	return appendInt(buf, n), nil
}

func appendInt(buf []byte, n int) []byte {
	var d [10]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(buf, d[i:]...)
}

// idnaProfile follows WHATWG's domain-to-ASCII (UTS #46 non-transitional
// processing, CheckBidi, CheckJoiners) and adds STD3 rules, so that a mapped
// character that is a URL delimiter (a full-width solidus, say) fails
// instead of becoming one.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckJoiners(true),
)

func appendHost(buf []byte, host string) ([]byte, bool, error) {
	if host == "" {
		return buf, false, errHost
	}
	if host[0] == '[' {
		b, err := appendIPv6(buf, host)
		return b, true, err
	}
	if needsIDNA(host) {
		a, err := idnaProfile.ToASCII(host)
		if err != nil {
			return buf, false, errIDNA
		}
		// The Unicode form must map back to the same ASCII, or the label
		// is a punycode spelling that another implementation may reject
		// or read differently.
		if back, err := idnaProfile.ToUnicode(a); err != nil {
			return buf, false, errIDNA
		} else if again, err := idnaProfile.ToASCII(back); err != nil || again != a {
			return buf, false, errIDNA
		}
		host = a
	}
	start := len(buf)
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'A' && c <= 'Z':
			buf = append(buf, c+('a'-'A'))
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			buf = append(buf, c)
		default:
			return buf, false, errHost
		}
	}
	// A trailing dot names the same DNS name; WHATWG keeps it, so the
	// canonical form drops it to have one spelling.
	if len(buf) > start && buf[len(buf)-1] == '.' {
		buf = buf[:len(buf)-1]
	}
	name := buf[start:]
	if len(name) == 0 || len(name) > 253 {
		return buf, false, errHost
	}
	lastDot := -1
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if l := i - lastDot - 1; l == 0 || l > 63 {
				return buf, false, errHost
			}
			if i < len(name) {
				lastDot = i
			}
		}
	}
	if !endsInNumber(string(name[lastDot+1:])) {
		return buf, false, nil
	}
	// WHATWG reads any host whose last label is a number as IPv4, in
	// decimal, octal or hex, with one to four parts.
	ip, ok := parseWHATWGIPv4(string(name))
	if !ok {
		return buf, false, errIPv4
	}
	buf = buf[:start]
	for i := 3; i >= 0; i-- {
		buf = appendInt(buf, int(ip>>(8*i)&0xff))
		if i > 0 {
			buf = append(buf, '.')
		}
	}
	return buf, true, nil
}

func needsIDNA(host string) bool {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return true
		}
	}
	for i := 0; i+4 <= len(host); i++ {
		if (i == 0 || host[i-1] == '.') && hasPrefixFold(host[i:], "xn--") {
			return true
		}
	}
	return false
}

func endsInNumber(label string) bool {
	if label == "" {
		return false
	}
	if allDigits(label, 10) {
		return true
	}
	return len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') && allDigits(label[2:], 16)
}

func allDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := digitVal(s[i], base); !ok {
			return false
		}
	}
	return true
}

func digitVal(c byte, base int) (uint64, bool) {
	var v uint64
	switch {
	case c >= '0' && c <= '9':
		v = uint64(c - '0')
	case c >= 'a' && c <= 'f':
		v = uint64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		v = uint64(c-'A') + 10
	default:
		return 0, false
	}
	return v, v < uint64(base)
}

// parseWHATWGIPv4 implements the WHATWG IPv4 parser, which is what workerd's
// fetch applies: "0x7f.1" and "2130706433" are both 127.0.0.1.
func parseWHATWGIPv4(host string) (uint32, bool) {
	var nums [4]uint64
	n := 0
	for host != "" || n == 0 {
		part := host
		if i := strings.IndexByte(host, '.'); i >= 0 {
			part, host = host[:i], host[i+1:]
			if host == "" {
				return 0, false
			}
		} else {
			host = ""
		}
		if n == 4 {
			return 0, false
		}
		v, ok := parseIPv4Number(part)
		if !ok {
			return 0, false
		}
		nums[n] = v
		n++
	}
	for i := 0; i < n-1; i++ {
		if nums[i] > 255 {
			return 0, false
		}
	}
	if nums[n-1] >= 1<<(8*(5-n)) {
		return 0, false
	}
	ip := nums[n-1]
	for i := 0; i < n-1; i++ {
		ip += nums[i] << (8 * (3 - i))
	}
	return uint32(ip), true
}

func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d, ok := digitVal(s[i], base)
		if !ok {
			return 0, false
		}
		v = v*uint64(base) + d
		if v > 1<<32 {
			return 0, false
		}
	}
	return v, true
}

// appendIPv6 writes an IPv6 literal the way WHATWG serializes it: lower-case
// hex, the first longest run of two or more zero pieces compressed, IPv4-mapped
// addresses in hex.
func appendIPv6(buf []byte, host string) ([]byte, error) {
	if len(host) < 3 || host[len(host)-1] != ']' {
		return buf, errIPv6
	}
	addr, err := netip.ParseAddr(host[1 : len(host)-1])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return buf, errIPv6
	}
	b := addr.As16()
	var pieces [8]uint16
	for i := range pieces {
		pieces[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	runStart, runLen := -1, 1
	for i := 0; i < 8; {
		if pieces[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && pieces[j] == 0 {
			j++
		}
		if j-i > runLen {
			runStart, runLen = i, j-i
		}
		i = j
	}
	buf = append(buf, '[')
	for i := 0; i < 8; i++ {
		if i == runStart {
			buf = append(buf, "::"...)
			i += runLen - 1
			continue
		}
		if i > 0 && i != runStart+runLen {
			buf = append(buf, ':')
		}
		buf = appendHex16(buf, pieces[i])
	}
	return append(buf, ']'), nil
}

func appendHex16(buf []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	started := false
	for shift := 12; shift >= 0; shift -= 4 {
		d := (v >> shift) & 0xf
		if d != 0 || started || shift == 0 {
			buf = append(buf, digits[d])
			started = true
		}
	}
	return buf
}

// Characters left as they are; everything else is percent-encoded. The sets
// are the RFC 3986 path and query characters minus those WHATWG encodes (the
// query set excludes ' because WHATWG encodes it in http(s) queries), so a
// canonical URL is a fixed point of WHATWG parsing.
var (
	pathRaw  = charset("!$&'()*+,;=:@")
	queryRaw = charset("!$&()*+,;=:@/?")
)

func charset(extra string) (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~" + extra {
		t[c] = true
	}
	return t
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendPath writes the canonical path: percent-encoding normalized, dot
// segments removed the way WHATWG removes them (encoded dots included), and
// then runs of slashes merged.
func appendPath(buf []byte, path string, encodedSlash *bool) ([]byte, error) {
	start := len(buf)
	if path == "" {
		return append(buf, '/'), nil
	}
	rest := path[1:] // path begins with '/'
	for {
		seg := rest
		last := true
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest, last = rest[:i], rest[i+1:], false
		}
		segStart := len(buf)
		buf = append(buf, '/')
		var err error
		var flags segFlags
		if buf, flags, err = appendSegmentFlags(buf, seg, encodedSlash); err != nil {
			return buf, err
		}
		switch s := buf[segStart+1:]; {
		case string(s) == ".":
			buf = buf[:segStart]
			if last {
				buf = append(buf, '/')
			}
		case string(s) == "..":
			buf = buf[:segStart]
			for len(buf) > start && buf[len(buf)-1] != '/' {
				buf = buf[:len(buf)-1]
			}
			if len(buf) > start {
				buf = buf[:len(buf)-1]
			}
			if last {
				buf = append(buf, '/')
			}
		case flags&segPercent != 0 && doubleEncoded(s):
			// A server or proxy that decodes twice sees another path;
			// checked on the output, since "%25%41" becomes "%25A".
			return buf, errDoubleEncoding
		case flags&segSemicolon != 0:
			// Servlet containers cut ";params" out of segments, so that
			// "/admin;x/users" and "/..;/admin" reach /admin/users.
			return buf, errSemicolon
		case flags&segSlash != 0 && hasDotPiece(s):
			// A server that decodes %2F before routing would walk up.
			return buf, errDotBehindSlash
		}
		if last {
			break
		}
	}
	// Merge slashes in place.
	w := start
	for r := start; r < len(buf); r++ {
		if buf[r] == '/' && w > start && buf[w-1] == '/' {
			continue
		}
		buf[w] = buf[r]
		w++
	}
	buf = buf[:w]
	if len(buf) == start {
		buf = append(buf, '/')
	}
	return buf, nil
}

var pct2F = []byte("%2F")

// doubleEncoded reports whether seg holds "%25" followed by two hex digits.
func doubleEncoded(seg []byte) bool {
	for i := 0; i+4 < len(seg); i++ {
		if seg[i] == '%' && seg[i+1] == '2' && seg[i+2] == '5' {
			_, ok1 := digitVal(seg[i+3], 16)
			_, ok2 := digitVal(seg[i+4], 16)
			if ok1 && ok2 {
				return true
			}
		}
	}
	return false
}

// hasDotPiece reports whether a segment split at %2F has a "." or ".." piece.
func hasDotPiece(seg []byte) bool {
	for {
		piece := seg
		i := bytes.Index(seg, pct2F)
		if i >= 0 {
			piece = seg[:i]
		}
		if string(piece) == "." || string(piece) == ".." {
			return true
		}
		if i < 0 {
			return false
		}
		seg = seg[i+3:]
	}
}

// segFlags records what appendSegment saw, so that the checks after it need
// not scan the segment again.
type segFlags uint8

const (
	segSemicolon segFlags = 1 << iota
	segSlash
	segPercent
)

func appendSegment(buf []byte, seg string, encodedSlash *bool) ([]byte, error) {
	buf, _, err := appendSegmentFlags(buf, seg, encodedSlash)
	return buf, err
}

func appendSegmentFlags(buf []byte, seg string, encodedSlash *bool) ([]byte, segFlags, error) {
	var f segFlags
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			if c == ';' {
				f |= segSemicolon
			}
			buf = appendEscaped(buf, c, &pathRaw)
			continue
		}
		v, ok := unhex2(seg, i)
		if !ok {
			return buf, f, errPercent
		}
		i += 2
		switch {
		case isUnreserved(v):
			buf = append(buf, v)
		case v == 0:
			return buf, f, errEncodedNUL
		case v < 0x20 || v == 0x7f:
			return buf, f, errEncodedControl
		case v == '\\':
			return buf, f, errEncodedBS
		case v == '%':
			f |= segPercent
			buf = append(buf, "%25"...)
		default:
			switch v {
			case '/':
				*encodedSlash = true
				f |= segSlash
			case ';':
				f |= segSemicolon
			}
			buf = appendPct(buf, v)
		}
	}
	return buf, f, nil
}

func appendQuery(buf []byte, q string) ([]byte, error) {
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '%' {
			buf = appendEscaped(buf, c, &queryRaw)
			continue
		}
		v, ok := unhex2(q, i)
		if !ok {
			return buf, errPercent
		}
		i += 2
		switch {
		case isUnreserved(v):
			buf = append(buf, v)
		case v == 0:
			return buf, errEncodedNUL
		default:
			buf = appendPct(buf, v)
		}
	}
	return buf, nil
}

func appendEscaped(buf []byte, c byte, raw *[256]bool) []byte {
	if raw[c] {
		return append(buf, c)
	}
	return appendPct(buf, c)
}

func appendPct(buf []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(buf, '%', hex[c>>4], hex[c&0xf])
}

// unhex2 decodes the two hex digits after s[i] == '%'.
func unhex2(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := digitVal(s[i+1], 16)
	lo, ok2 := digitVal(s[i+2], 16)
	return byte(hi<<4 | lo), ok1 && ok2
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && asciiEqualFold(s[:len(prefix)], prefix)
}

// asciiEqualFold is not inlined: at its 29 call sites it was 2 KB gzip of
// the module.
//
//go:noinline
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}
