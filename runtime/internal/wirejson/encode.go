package wirejson

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/damperdev/damper/internal/wire"
)

// AppendFetchArgs appends a as JSON, the same value json.Marshal writes.
func AppendFetchArgs(b []byte, a *wire.FetchArgs) []byte {
	b = append(b, `{"method":`...)
	b = AppendString(b, a.Method)
	b = append(b, `,"url":`...)
	b = AppendString(b, a.URL)
	if len(a.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, h := range a.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = AppendString(b, h[0])
			b = append(b, ',')
			b = AppendString(b, h[1])
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if len(a.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, a.Body)
		b = append(b, '"')
	}
	if a.Stream {
		b = append(b, `,"stream":true`...)
	}
	return append(b, '}')
}

// fetchArgsSize is about the size of a's JSON: enough unless many
// characters need escaping.
func fetchArgsSize(a *wire.FetchArgs) int {
	n := 64 + len(a.Method) + len(a.URL) + base64.StdEncoding.EncodedLen(len(a.Body))
	for _, h := range a.Headers {
		n += 8 + len(h[0]) + len(h[1])
	}
	return n
}

func appendReadArgs(b []byte, a *wire.ReadArgs) []byte {
	b = append(b, `{"handle":`...)
	b = strconv.AppendUint(b, a.Handle, 10)
	b = append(b, `,"max":`...)
	b = strconv.AppendInt(b, int64(a.Max), 10)
	return append(b, '}')
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
