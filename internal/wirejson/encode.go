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
	b = appendHeadersAndBody(b, a.Headers, a.Body)
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

// AppendResume appends r as JSON for damper_resume. Each result's Value
// is written as it is, unlike json.Marshal, which validates and compacts
// a json.RawMessage again: the host vouches for it, as it comes from
// json.Marshal or AppendFetchValue. Strings are escaped as AppendString
// does, which decodes to what json.Marshal's escapes decode to.
func AppendResume(b []byte, r *wire.Resume) []byte {
	b = append(b, `{"task":`...)
	b = AppendString(b, r.Task)
	b = append(b, `,"results":`...)
	if r.Results == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range r.Results {
		res := &r.Results[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendUint(b, res.ID, 10)
		if len(res.Value) > 0 {
			b = append(b, `,"value":`...)
			b = append(b, res.Value...)
		}
		if e := res.Error; e != nil {
			b = append(b, `,"error":{"type":`...)
			b = AppendString(b, e.Type)
			b = append(b, `,"message":`...)
			b = AppendString(b, e.Message)
			if e.Status != 0 {
				b = append(b, `,"status":`...)
				b = strconv.AppendInt(b, int64(e.Status), 10)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// ResumeSize is about the size of r's JSON, to allocate once.
func ResumeSize(r *wire.Resume) int {
	n := 32 + len(r.Task)
	for i := range r.Results {
		res := &r.Results[i]
		n += 40 + len(res.Value)
		if res.Error != nil {
			n += 64 + len(res.Error.Type) + len(res.Error.Message)
		}
	}
	return n
}

// AppendFetchValue appends v as JSON, the same value json.Marshal writes.
func AppendFetchValue(b []byte, v *wire.FetchValue) []byte {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(v.Status), 10)
	b = appendHeadersAndBody(b, v.Headers, v.Body)
	if v.Handle != 0 {
		b = append(b, `,"handle":`...)
		b = strconv.AppendUint(b, v.Handle, 10)
	}
	return append(b, '}')
}

// FetchValueSize is about the size of v's JSON: enough unless many
// characters need escaping.
func FetchValueSize(v *wire.FetchValue) int {
	n := 48 + base64.StdEncoding.EncodedLen(len(v.Body))
	for _, h := range v.Headers {
		n += 8 + len(h[0]) + len(h[1])
	}
	return n
}

// appendHeadersAndBody appends the "headers" and "body" members that fetch
// args and fetch values share, each omitted when empty as omitempty does.
func appendHeadersAndBody(b []byte, headers []wire.Header, body []byte) []byte {
	if len(headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, h := range headers {
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
	if len(body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, body)
		b = append(b, '"')
	}
	return b
}
