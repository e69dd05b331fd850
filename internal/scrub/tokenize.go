package scrub

import "unicode/utf8"

// The decoding views. Each reads the source text byte by byte and writes
// the bytes it decodes to a sink, each with the source span [s, e) it
// came from, so that a secret found in the decoded bytes is replaced in
// the source. A view decodes one family of escapes and leaves every other
// byte as it is; a malformed escape is left as it is too.
const (
	viewRaw     = iota // the text itself
	viewPercent        // %XX in either case
	viewForm           // %XX, and '+' for a space
	viewJSON           // \" \\ \/ \b \f \n \r \t \uXXXX (surrogate pairs joined)
	viewHTML           // &#DDD; &#xHH; and named references
	numViews
)

// expansion is the most source bytes a view reads for one decoded byte:
// "%41", "\u0041", "&#x00000041;".
var expansion = [numViews]int{1, 3, 3, 6, 12}

// maxRefDigits bounds the digits of an HTML numeric reference, leading
// zeros included, so that what a stream holds back stays bounded.
const maxRefDigits = 8

// htmlNames are the named character references the HTML view decodes:
// every ASCII one, and a few an encoder writes for others. Only with the
// ';'.
var htmlNames = map[string]string{
	"amp": "&", "AMP": "&", "lt": "<", "LT": "<", "gt": ">", "GT": ">",
	"quot": `"`, "QUOT": `"`, "apos": "'", "nbsp": "\u00a0", "Tab": "\t", "NewLine": "\n",
	"excl": "!", "num": "#", "dollar": "$", "percnt": "%", "lpar": "(", "rpar": ")",
	"ast": "*", "midast": "*", "plus": "+", "comma": ",", "period": ".", "sol": "/",
	"colon": ":", "semi": ";", "equals": "=", "quest": "?", "commat": "@",
	"lsqb": "[", "lbrack": "[", "bsol": `\`, "rsqb": "]", "rbrack": "]", "Hat": "^",
	"lowbar": "_", "grave": "`", "lcub": "{", "lbrace": "{", "verbar": "|", "vert": "|",
	"rcub": "}", "rbrace": "}", "copy": "\u00a9", "reg": "\u00ae", "euro": "\u20ac",
}

const maxNameLen = 7 // "NewLine"

// windows1252 is what HTML decodes &#128; to &#159; as.
var windows1252 = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}

type sink interface {
	put(b byte, s, e int)
}

// tokenizer is the state of one decoding view between two source bytes.
type tokenizer struct {
	kind  uint8
	st    uint8 // 0: between escapes
	start int   // where the escape being read began
	n     int   // its bytes so far
	buf   [16]byte
	val   uint32
	// A JSON high surrogate waiting for its low half.
	hasHi    bool
	hi       uint32
	hiS, hiE int
}

func (t *tokenizer) idle() bool { return t.st == 0 && !t.hasHi }

// pending is where the earliest byte not yet decoded began, or -1.
func (t *tokenizer) pending() int {
	if t.hasHi {
		return t.hiS
	}
	if t.st != 0 {
		return t.start
	}
	return -1
}

func hexVal(b byte) (uint32, bool) {
	switch {
	case '0' <= b && b <= '9':
		return uint32(b - '0'), true
	case 'a' <= b && b <= 'f':
		return uint32(b-'a') + 10, true
	case 'A' <= b && b <= 'F':
		return uint32(b-'A') + 10, true
	}
	return 0, false
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// begin starts an escape at pos.
func (t *tokenizer) begin(b byte, pos int, st uint8) {
	t.st, t.start, t.n, t.val = st, pos, 1, 0
	t.buf[0] = b
}

func (t *tokenizer) add(b byte) {
	t.buf[t.n] = b
	t.n++
}

// literal gives up the escape being read: its bytes are themselves.
func (t *tokenizer) literal(out sink) {
	for i := range t.n {
		t.lit(t.buf[i], t.start+i, out)
	}
	t.st, t.n = 0, 0
}

// lit writes one byte as itself (after a JSON high surrogate left alone).
func (t *tokenizer) lit(b byte, pos int, out sink) {
	if t.hasHi {
		t.flushHi(out)
	}
	out.put(b, pos, pos+1)
}

func (t *tokenizer) flushHi(out sink) {
	t.hasHi = false
	putRune(utf8.RuneError, t.hiS, t.hiE, out)
}

func putRune(r rune, s, e int, out sink) {
	var b [4]byte
	n := utf8.EncodeRune(b[:], r)
	for i := range n {
		out.put(b[i], s, e)
	}
}

// feed reads the source byte b at pos.
func (t *tokenizer) feed(b byte, pos int, out sink) {
	switch t.kind {
	case viewRaw:
		out.put(b, pos, pos+1)
	case viewPercent, viewForm:
		t.feedPercent(b, pos, out)
	case viewJSON:
		t.feedJSON(b, pos, out)
	case viewHTML:
		t.feedHTML(b, pos, out)
	}
}

func (t *tokenizer) feedPercent(b byte, pos int, out sink) {
	for {
		switch t.st {
		case 0:
			switch {
			case b == '%':
				t.begin(b, pos, 1)
			case b == '+' && t.kind == viewForm:
				out.put(' ', pos, pos+1)
			default:
				out.put(b, pos, pos+1)
			}
			return
		case 1:
			if h, ok := hexVal(b); ok {
				t.val = h
				t.add(b)
				t.st = 2
				return
			}
		case 2:
			if h, ok := hexVal(b); ok {
				t.st, t.n = 0, 0
				out.put(byte(t.val<<4|h), t.start, pos+1)
				return
			}
		}
		t.literal(out) // and read b again, between escapes
	}
}

func (t *tokenizer) feedJSON(b byte, pos int, out sink) {
	for {
		switch t.st {
		case 0:
			if b == '\\' {
				t.begin(b, pos, 1)
			} else {
				t.lit(b, pos, out)
			}
			return
		case 1:
			var c byte
			switch b {
			case '"', '\\', '/':
				c = b
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				t.add(b)
				t.st = 2
				return
			}
			if c != 0 {
				t.st, t.n = 0, 0
				if t.hasHi {
					t.flushHi(out)
				}
				out.put(c, t.start, pos+1)
				return
			}
		case 2:
			if h, ok := hexVal(b); ok {
				t.val = t.val<<4 | h
				t.add(b)
				if t.n == 6 {
					t.st, t.n = 0, 0
					t.code(t.val, t.start, pos+1, out)
				}
				return
			}
		}
		t.literal(out)
	}
}

// code writes the character a \uXXXX escape holds, joining surrogates.
func (t *tokenizer) code(c uint32, s, e int, out sink) {
	switch {
	case 0xD800 <= c && c < 0xDC00:
		if t.hasHi {
			t.flushHi(out)
		}
		t.hasHi, t.hi, t.hiS, t.hiE = true, c, s, e
	case 0xDC00 <= c && c < 0xE000:
		if t.hasHi {
			t.hasHi = false
			putRune(rune(0x10000+(t.hi-0xD800)<<10+(c-0xDC00)), t.hiS, e, out)
		} else {
			putRune(utf8.RuneError, s, e, out)
		}
	default:
		if t.hasHi {
			t.flushHi(out)
		}
		putRune(rune(c), s, e, out)
	}
}

func (t *tokenizer) feedHTML(b byte, pos int, out sink) {
	for {
		switch t.st {
		case 0:
			if b == '&' {
				t.begin(b, pos, 1)
			} else {
				out.put(b, pos, pos+1)
			}
			return
		case 1: // "&"
			if b == '#' {
				t.add(b)
				t.st = 2
				return
			}
			if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' {
				t.add(b)
				t.st = 5
				return
			}
		case 2: // "&#"
			if b == 'x' || b == 'X' {
				t.add(b)
				t.st = 3
				return
			}
			if '0' <= b && b <= '9' {
				t.add(b)
				t.val = uint32(b - '0')
				t.st = 4
				return
			}
		case 3, 4: // "&#x" hex digits, or "&#" decimal digits
			digits := t.n - 3
			if t.st == 4 {
				digits = t.n - 2
			}
			h, ok := hexVal(b)
			if t.st == 4 {
				ok = '0' <= b && b <= '9'
			}
			if ok && digits < maxRefDigits {
				if t.st == 3 {
					t.val = t.val<<4 | h
				} else {
					t.val = t.val*10 + uint32(b-'0')
				}
				t.add(b)
				return
			}
			if !ok && digits > 0 {
				t.st, t.n = 0, 0
				if b == ';' {
					putRune(htmlRune(t.val), t.start, pos+1, out)
					return
				}
				putRune(htmlRune(t.val), t.start, pos, out)
				continue // b is not part of the reference
			}
		case 5: // "&name"
			if isAlnum(b) && t.n-1 < maxNameLen {
				t.add(b)
				return
			}
			if b == ';' {
				if v, ok := htmlNames[string(t.buf[1:t.n])]; ok {
					t.st, t.n = 0, 0
					for i := range len(v) {
						out.put(v[i], t.start, pos+1)
					}
					return
				}
			}
		}
		t.literal(out)
	}
}

// htmlRune is the character a numeric reference stands for, as HTML
// decodes it.
func htmlRune(c uint32) rune {
	switch {
	case 0x80 <= c && c <= 0x9F:
		return windows1252[c-0x80]
	case c == 0 || 0xD800 <= c && c <= 0xDFFF || c > 0x10FFFF:
		return utf8.RuneError
	}
	return rune(c)
}

// finish ends the text: an escape cut short is left as it is, except a
// numeric reference, which needs no ';'.
func (t *tokenizer) finish(end int, out sink) {
	if t.kind == viewHTML && (t.st == 3 && t.n > 3 || t.st == 4) {
		t.st, t.n = 0, 0
		putRune(htmlRune(t.val), t.start, end, out)
	}
	if t.st != 0 {
		t.literal(out)
	}
	if t.hasHi {
		t.flushHi(out)
	}
}
