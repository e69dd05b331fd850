package scrub

import (
	"bytes"
	"encoding/base64"
	"strings"
	"sync"
	"unsafe"

	"github.com/damperdev/damper/internal/wire"
)

// Secret is a secret value and the ways a request carries it.
type Secret struct {
	Name  string
	Value string
	// BasicUsers are the user names it is sent with in HTTP Basic
	// credentials ("USER:value", base64).
	BasicUsers []string
}

// Scrubber replaces secret values with "[REDACTED:NAME]" in what a host
// hands back to the module. It is safe for concurrent use; the zero value
// and nil scrub nothing. See the package documentation for what it finds.
type Scrubber struct {
	text, b64, hex *family
	redactions     [][]byte
	holdBack       int
	replay         int         // see view.wake
	span           *[256]uint8 // see spanClass
	names          []folded    // see Headers
	engines        sync.Pool
}

// folded is a secret's encoding in lower case, as it arrives in a header
// name (see Headers).
type folded struct {
	text string
	sec  int
}

// New compiles a Scrubber for secrets. Empty values are ignored. Where two
// secrets' encodings are the same text, the one listed first names it.
func New(secrets ...Secret) *Scrubber {
	sc := &Scrubber{}
	var text, b64, hex [][]byte
	var textSec, b64Sec, hexSec []int
	for _, s := range secrets {
		if s.Value == "" {
			continue
		}
		i := len(sc.redactions)
		sc.redactions = append(sc.redactions, []byte("[REDACTED:"+s.Name+"]"))
		v := []byte(s.Value)
		// Besides the value, its JSON-escaped forms, so that one escaped
		// and then percent-encoded, HTML-escaped or base64-encoded (a JSON
		// document that echoes it) is found too: as encoding/json writes
		// it, with and without HTML escaping, and with "/" as "\/" (PHP's
		// json_encode, by default).
		forms := [][]byte{v, jsonEscape(v, false), jsonEscape(v, true), bytes.ReplaceAll(jsonEscape(v, false), []byte("/"), []byte(`\/`))}
		for _, f := range forms {
			text, textSec = append(text, f), append(textSec, i)
			b64, b64Sec = append(b64, f), append(b64Sec, i)
		}
		for _, u := range s.BasicUsers {
			basic := []byte(u + ":" + s.Value)
			b64, b64Sec = append(b64, basic), append(b64Sec, i)
			// The Authorization header's own text, in a document that
			// echoes it in base64.
			b64, b64Sec = append(b64, []byte(base64.StdEncoding.EncodeToString(basic))), append(b64Sec, i)
		}
		hex, hexSec = append(hex, v), append(hexSec, i)
		if len(v) >= MinEncodedLen {
			sc.names = append(sc.names, foldedForms(i, v, s.BasicUsers)...)
		}
	}
	if len(sc.redactions) == 0 {
		return &Scrubber{}
	}
	sc.text, sc.b64, sc.hex = newFamily(text, textSec), newFamily(b64, b64Sec), newFamily(hex, hexSec)
	sc.holdBack = holdBack(sc.text.maxLen, sc.b64.maxLen, sc.hex.maxLen)
	sc.span = spanClass(text)
	// The longest span a match takes in plain text, with what a view reads
	// ahead to end it, and more than a whole run of a short text takes.
	syms := (8*sc.b64.maxLen+4+5)/6 + 1
	sc.replay = max(sc.text.maxLen+2, syms*(1+maxGap)+2+maxGap+1, 4*MinEncodedLen*(1+maxGap)) + 16
	sc.engines.New = func() any { return newEngine(sc) }
	return sc
}

// holdBack bounds, in source bytes, how far before the end of what it has
// read a stream's earliest possible match can begin: the longest span a
// match of each family takes in each view, with the bytes read ahead to
// end an escape or a run.
func holdBack(text, b64, hex int) int {
	hb := 0
	// A base64 text of n bytes takes ceil((8n+4)/6) symbols at worst, a
	// line break of maxGap between any two, and two '=' after.
	syms := (8*b64+4+5)/6 + 1
	for k := range numViews {
		x := expansion[k]
		hb = max(hb, (text+2)*x, (syms*(1+maxGap)+2+maxGap+1)*x)
	}
	hb = max(hb, 2*hex*(1+maxGap)+maxGap+1)
	return hb + 2*expansion[viewHTML]
}

// Classes of source bytes for what a stream holds back (engine.handOut).
const (
	spanNone uint8 = iota // no match can hold the byte
	spanByte              // a match can hold the byte
	spanGap               // a match can hold the byte between two others (CR, LF)
)

// spanFixed are the bytes any encoding a Scrubber finds may be made of,
// whatever the secrets: letters and digits (hex, base64, escapes, named
// references), base64's other symbols and padding, and the escape syntax
// of the decoding views.
const spanFixed = "+/-_=%&#;\\"

// spanClass classes the bytes a match may span in the source: spanFixed,
// letters and digits, and every byte of the texts the views look for (the
// values and their JSON-escaped forms; every other family is found in
// decoded base64 or hex, which is made of spanFixed bytes); CR and LF are
// gaps, unless a text holds them.
//
// A stream holds back the run of such bytes that ends what it has read
// (engine.handOut): every match that may still begin lies inside that run,
// so the stream never needs to hold back more, and holding back exactly
// that much, rather than only where a match may begin, makes what it hands
// out independent of the secrets' values. The class depends on the values
// only through which bytes outside spanFixed they hold.
func spanClass(texts [][]byte) *[256]uint8 {
	var c [256]uint8
	for b := '0'; b <= '9'; b++ {
		c[b] = spanByte
	}
	for b := 'a'; b <= 'z'; b++ {
		c[b], c[b-'a'+'A'] = spanByte, spanByte
	}
	for i := 0; i < len(spanFixed); i++ {
		c[spanFixed[i]] = spanByte
	}
	c['\r'], c['\n'] = spanGap, spanGap
	for _, t := range texts {
		for _, b := range t {
			c[b] = spanByte
		}
	}
	return &c
}

// Empty reports whether there is no secret to find.
func (s *Scrubber) Empty() bool { return s == nil || s.text == nil }

// HoldBack is the most bytes a stream holds back (see NewReader): no more
// than this many bytes read are not yet handed out, whatever the chunks.
// It is 0 when there is nothing to find.
func (s *Scrubber) HoldBack() int {
	if s.Empty() {
		return 0
	}
	return s.holdBack
}

func (s *Scrubber) get() *engine {
	e := s.engines.Get().(*engine)
	e.reset()
	return e
}

func (s *Scrubber) put(e *engine) {
	if cap(e.out) > 1<<20 || cap(e.src) > 1<<20 {
		return // do not keep a large body's buffers alive
	}
	e.src, e.out = nil, e.out[:0]
	s.engines.Put(e)
}

// scrub returns b with every secret replaced, b itself when none was
// found.
func (s *Scrubber) scrub(b []byte) []byte {
	if s.Empty() || len(b) == 0 {
		return b
	}
	e := s.get()
	defer s.put(e)
	e.src, e.lazy = b, true
	e.write(b)
	e.finish()
	if e.lazy {
		return b
	}
	return append([]byte(nil), e.out...)
}

// Bytes returns b with every secret replaced. When nothing was replaced it
// returns b itself.
func (s *Scrubber) Bytes(b []byte) []byte { return s.scrub(b) }

// String returns v with every secret replaced, looked for in its bytes.
func (s *Scrubber) String(v string) string {
	if s.Empty() || v == "" {
		return v
	}
	b := unsafe.Slice(unsafe.StringData(v), len(v)) // read only
	out := s.scrub(b)
	if len(out) == len(b) && (len(out) == 0 || &out[0] == &b[0]) {
		return v
	}
	return string(out)
}

// Headers returns a copy of h with every secret replaced in names and
// values.
//
// Both hosts hand header names over in lower case (Go's transport and
// workerd re-case them before a host sees them), so a value a server put
// in a name, raw or base64 encoded, has lost its case; a name that holds
// one in lower case, raw or base64 encoded at any offset (both alphabets;
// Basic credentials too), is replaced whole. Hex is found in any case
// anyway. Values under MinEncodedLen bytes are found in a name only as
// written.
func (s *Scrubber) Headers(h []wire.Header) []wire.Header {
	out := make([]wire.Header, len(h))
	for i, f := range h {
		out[i] = wire.Header{s.name(f[0]), s.String(f[1])}
	}
	return out
}

// name scrubs a header name: as any text, then in lower case (Headers).
func (s *Scrubber) name(n string) string {
	if out := s.String(n); out != n || s.Empty() {
		return out
	}
	lower := strings.ToLower(n)
	for _, f := range s.names {
		if strings.Contains(lower, f.text) {
			return string(s.redactions[f.sec])
		}
	}
	return n
}

// foldedForms are the lower-case texts that betray value v (secret i) in a
// header name: the value itself, its JSON-escaped forms and "USER:value"
// for each Basic user, raw, and base64 encoded at each byte offset in both
// alphabets (only the characters that the text alone decides, so that the
// bytes around it do not matter).
func foldedForms(i int, v []byte, users []string) []folded {
	texts := [][]byte{v, jsonEscape(v, false), jsonEscape(v, true)}
	for _, u := range users {
		basic := []byte(u + ":" + string(v))
		texts = append(texts, basic, []byte(base64.StdEncoding.EncodeToString(basic)))
	}
	var out []folded
	add := func(t string) {
		t = strings.ToLower(t)
		for _, f := range out {
			if f.text == t {
				return
			}
		}
		out = append(out, folded{text: t, sec: i})
	}
	for _, t := range texts {
		add(string(t))
		for k := range 3 {
			// k bytes before the text: the symbols wholly inside it are
			// those from bit 8k on, up to its end.
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), t...))
			from, to := (8*k+5)/6, 8*(k+len(t))/6
			core := enc[from:to]
			add(core)
			add(strings.NewReplacer("+", "-", "/", "_").Replace(core))
		}
	}
	return out
}

// Error returns an error whose message is err's with every secret
// replaced; nil stays nil. The chain is cut: a wrapped error could still
// print a value.
func (s *Scrubber) Error(err error) error {
	if err == nil {
		return nil
	}
	return &scrubbedError{s.String(err.Error())}
}

type scrubbedError struct{ msg string }

func (e *scrubbedError) Error() string { return e.msg }

// jsonEscape writes v's bytes the way a JSON encoder escapes a string's
// contents: '"', '\\' and control characters (short forms where JSON has
// them), and with html also '<', '>' and '&' as encoding/json does.
func jsonEscape(v []byte, html bool) []byte {
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, len(v))
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c < 0x20 || html && (c == '<' || c == '>' || c == '&'):
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return out
}
