package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// Fake secrets: obviously not real credentials.
const (
	gh = "test-token-123"
	an = "test-key/with+odd chars"
)

// streamed scrubs in through a stream fed in chunks of the given sizes
// (the last repeated), checking after each chunk that no more than
// HoldBack bytes are held.
func streamed(t testing.TB, s *Scrubber, in []byte, sizes ...int) []byte {
	t.Helper()
	e := newEngine(s)
	var out []byte
	for off, i := 0, 0; off < len(in); i++ {
		n := min(sizes[min(i, len(sizes)-1)], len(in)-off)
		out = append(out, e.push(in[off:off+n])...)
		off += n
		require.LessOrEqual(t, e.pos-e.emitted, s.HoldBack(), "held back after %d bytes", off)
	}
	out = append(out, e.flush()...)
	require.Zero(t, e.late, "a span was reported after its start was handed out")
	return out
}

// awake scrubs in with no view ever sleeping.
func awake(s *Scrubber, in []byte) []byte {
	e := newEngine(s)
	e.noSleep = true
	out := append([]byte(nil), e.push(in)...)
	return append(out, e.flush()...)
}

// check scrubs in whole and streamed in several ways, requires the same
// output every way, and returns it.
func check(t testing.TB, s *Scrubber, in string) string {
	t.Helper()
	want := s.String(in)
	require.Equal(t, want, string(s.Bytes([]byte(in))))
	require.Equal(t, want, string(awake(s, []byte(in))), "with every view awake")
	for _, sizes := range [][]int{{1}, {2}, {7}, {3, 1, 4, 1, 5}, {len(in) + 1}} {
		require.Equal(t, want, string(streamed(t, s, []byte(in), sizes...)), "chunks of %v", sizes)
	}
	return want
}

func TestScrubber(t *testing.T) {
	s := New(Secret{Name: "GITHUB_TOKEN", Value: gh, BasicUsers: []string{"x-access-token"}}, Secret{Name: "ANTHROPIC_API_KEY", Value: an})
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + gh))

	for name, tc := range map[string]struct{ in, want string }{
		"raw":          {"token=" + gh + ".", "token=[REDACTED:GITHUB_TOKEN]."},
		"basic":        {"Authorization: Basic " + basic, "Authorization: Basic [REDACTED:GITHUB_TOKEN]"},
		"query-escape": {"?k=" + url.QueryEscape(an), "?k=[REDACTED:ANTHROPIC_API_KEY]"},
		"path-escape":  {"/k/" + url.PathEscape(an), "/k/[REDACTED:ANTHROPIC_API_KEY]"},
		"js-escape":    {"/k/test-key%2Fwith%2Bodd%20chars", "/k/[REDACTED:ANTHROPIC_API_KEY]"},
		"json":         {`{"k":"` + an + `"}`, `{"k":"[REDACTED:ANTHROPIC_API_KEY]"}`},
		"base64":       {base64.StdEncoding.EncodeToString([]byte(an)), "[REDACTED:ANTHROPIC_API_KEY]"},
		"twice":        {gh + gh, "[REDACTED:GITHUB_TOKEN][REDACTED:GITHUB_TOKEN]"},
		"clean":        {"nothing to see", "nothing to see"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, check(t, s, tc.in))
		})
	}
	assert.Equal(t, []wire.Header{{"X-Echo", "Bearer [REDACTED:GITHUB_TOKEN]"}, {"X-" + "[REDACTED:GITHUB_TOKEN]", "ok"}},
		s.Headers([]wire.Header{{"X-Echo", "Bearer " + gh}, {"X-" + gh, "ok"}}))

	plain := New(Secret{Name: "K", Value: gh, BasicUsers: []string{"bot"}}, Secret{Name: "EMPTY"})
	require.Equal(t, "Basic [REDACTED:K]", plain.String("Basic "+base64.StdEncoding.EncodeToString([]byte("bot:"+gh))))
	require.Equal(t, "unchanged", plain.String("unchanged"), "an empty secret matches nothing")
}

func TestEmpty(t *testing.T) {
	for _, s := range []*Scrubber{nil, {}, New(), New(Secret{Name: "E"})} {
		assert.True(t, s.Empty())
		assert.Zero(t, s.HoldBack())
		assert.Equal(t, "x"+gh, s.String("x"+gh))
		assert.Equal(t, []byte(gh), s.Bytes([]byte(gh)))
		body := io.NopCloser(strings.NewReader(gh))
		assert.Equal(t, body, NewReader(body, s), "nothing to find: the body itself")
		assert.EqualError(t, s.Error(errors.New(gh)), gh)
	}
	assert.False(t, New(Secret{Name: "A", Value: "a"}).Empty())
}

func TestNothingFoundIsTheInputItself(t *testing.T) {
	s := New(Secret{Name: "T", Value: gh})
	in := []byte("an ordinary body, " + strings.Repeat("abc ", 5000))
	out := s.Bytes(in)
	require.Equal(t, in, out)
	assert.Same(t, &in[0], &out[0])
}

func TestError(t *testing.T) {
	s := New(Secret{Name: "T", Value: gh})
	inner := fmt.Errorf("dial: %s", gh)
	err := s.Error(fmt.Errorf("fetch: %w", inner))
	assert.EqualError(t, err, "fetch: dial: [REDACTED:T]")
	assert.False(t, errors.Is(err, inner), "the chain is cut")
	assert.Nil(t, s.Error(nil))
}

// An endpoint may echo the Authorization header it received inside a
// base64 document, so the value starts wherever the text before it puts
// it: at any of the three byte offsets in a base64 group, and followed by
// more text.
func TestBase64Unaligned(t *testing.T) {
	const secret = gh
	s := New(Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}})
	basicPayload := base64.StdEncoding.EncodeToString([]byte("bot:" + secret))

	for _, tc := range []struct {
		name  string
		enc   *base64.Encoding
		plain string // base64'd whole; must hold a credential
	}{
		{"bearer in json", base64.StdEncoding, `{"auth":"Bearer ` + secret + `"}`},
		{"bearer in json, url-safe", base64.RawURLEncoding, `{"auth":"Bearer ` + secret + `"}`},
		{"offset 0, followed by text", base64.StdEncoding, secret + "~more"},
		{"offset 1", base64.StdEncoding, "x" + secret},
		{"offset 2", base64.StdEncoding, "xy" + secret + "z"},
		{"offset 1, url-safe", base64.URLEncoding, "x" + secret + "zz"},
		{"basic user:value at offset 2", base64.StdEncoding, "auth=bot:" + secret + "~"},
		{"basic header echoed", base64.StdEncoding, `{"auth":"Basic ` + basicPayload + `"}`},
		{"basic header echoed at offset 2", base64.RawURLEncoding, `{"a":"Basic ` + basicPayload + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.enc.EncodeToString([]byte(tc.plain))
			got := check(t, s, in)
			require.Contains(t, got, "[REDACTED:T]")
			assertNoBits(t, tc.enc, got, secret)
		})
	}
	// Every character that carries a bit of the value goes, even those
	// that carry bits of the text around it too.
	require.Equal(t, "eyJhdXRoIjoiQmVhcmVyI[REDACTED:T]In0=",
		s.String(base64.StdEncoding.EncodeToString([]byte(`{"auth":"Bearer `+secret+`"}`))))
	// Aligned and whole, the padding goes too.
	require.Equal(t, "[REDACTED:T]", s.String(base64.StdEncoding.EncodeToString([]byte(secret))))
}

// assertNoBits checks that no bit offset of what is left of a base64 text
// decodes to a byte of secret beyond its first and last: the characters
// left around a redaction carry none of the value.
func assertNoBits(t *testing.T, enc *base64.Encoding, scrubbed, secret string) {
	t.Helper()
	for _, part := range strings.Split(scrubbed, "[REDACTED:T]") {
		part = strings.TrimRight(part, "=")
		for skip := range 4 {
			if skip > len(part) {
				break
			}
			p := part[skip:]
			p = p[:len(p)/4*4]
			dec, err := base64.RawStdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "/").Replace(p))
			if err != nil {
				continue
			}
			assert.NotContains(t, string(dec), secret[1:len(secret)-1], "left: %q", part)
		}
	}
	_ = enc
}

// A text shorter than MinEncodedLen is found hex or base64 encoded only as
// a whole run: it would match unrelated base64 by chance. It is still found
// raw and escaped anywhere.
func TestShortValue(t *testing.T) {
	const secret = "short-v" // 7 bytes
	s := New(Secret{Name: "T", Value: secret})
	std := base64.StdEncoding.EncodeToString
	for _, tc := range []struct{ name, in, want string }{
		{"whole", std([]byte(secret)), "[REDACTED:T]"},
		{"whole, unpadded url-safe", base64.RawURLEncoding.EncodeToString([]byte(secret)), "[REDACTED:T]"},
		{"whole, after a space", "Bearer " + std([]byte(secret)) + " x", "Bearer [REDACTED:T] x"},
		{"inside longer base64: not looked for", std([]byte(secret + "!")), std([]byte(secret + "!"))},
		{"after more base64: not looked for", std([]byte("x" + secret)), std([]byte("x" + secret))},
		{"hex whole", hex.EncodeToString([]byte(secret)), "[REDACTED:T]"},
		{"hex inside longer hex: not looked for", "00" + hex.EncodeToString([]byte(secret)), "00" + hex.EncodeToString([]byte(secret))},
		{"raw anywhere", "x" + secret + "y", "x[REDACTED:T]y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, check(t, s, tc.in))
		})
	}
	ab := New(Secret{Name: "X", Value: "ab"})
	require.Equal(t, "[REDACTED:X]", ab.String("ab"))
	require.Equal(t, "YWJj", ab.String("YWJj"), "base64 of abc starts like that of ab")
	require.Equal(t, "b64=[REDACTED:X];", ab.String("b64=YWI=;"))

	nine := New(Secret{Name: "N", Value: "short-val"}) // MinEncodedLen: found at every offset
	for _, pre := range []string{"", "x", "xy", "xyz"} {
		in := std([]byte(pre + "short-val" + "!"))
		assert.Contains(t, nine.String(in), "[REDACTED:N]", "after %q", pre)
	}
}

// Overlapping secrets: at one position the longest wins; a secret that
// overlaps one already replaced is replaced from where that one ends, so
// no part of either is left; the same secret overlapping itself is one
// redaction.
func TestOverlaps(t *testing.T) {
	s := New(Secret{Name: "SHORT", Value: "tok"}, Secret{Name: "LONG", Value: "tok-tok-long"})
	assert.Equal(t, "[REDACTED:LONG] [REDACTED:SHORT]-[REDACTED:SHORT] [REDACTED:SHORT]", check(t, s, "tok-tok-long tok-tok tok"))

	s = New(Secret{Name: "FIRST", Value: gh}, Secret{Name: "SECOND", Value: gh})
	assert.Equal(t, "[REDACTED:FIRST]", check(t, s, gh), "the same value under two names: the first names it")

	s = New(Secret{Name: "X", Value: "abcd"}, Secret{Name: "Y", Value: "cdef"})
	assert.Equal(t, "[REDACTED:X][REDACTED:Y]", check(t, s, "abcdef"))

	s = New(Secret{Name: "A", Value: "aa"})
	assert.Equal(t, "[REDACTED:A]", check(t, s, "aaa"))
	assert.Equal(t, "[REDACTED:A] [REDACTED:A]", check(t, s, "aaaa aa"))
}

// Every encoding family, as real encoders write it, whole and embedded.
func TestEncodings(t *testing.T) {
	const secret = `fake-Tok/en+1 "x" <&> é😀`
	s := New(Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}})
	for name, enc := range encodingsOf(secret) {
		t.Run(name, func(t *testing.T) {
			for _, in := range []string{enc, "<" + enc + ">", "x" + enc + "\n", `{"a":"` + enc + `"}`} {
				got := check(t, s, in)
				assert.Contains(t, got, "[REDACTED:T]", "in %q", in)
				for name2, enc2 := range encodingsOf(secret) {
					assert.NotContains(t, got, enc2, "%s left in %q", name2, in)
				}
			}
		})
	}
}

// encodingsOf is secret in every form the package documents, as the
// standard library and the usual encoders write it.
func encodingsOf(secret string) map[string]string {
	b := []byte(secret)
	js := func(escapeHTML bool) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		if err := enc.Encode(secret); err != nil {
			panic(err)
		}
		return strings.TrimSuffix(strings.TrimSpace(buf.String()), `"`)[1:]
	}
	var allU, allUUpper, slash strings.Builder
	for _, r := range secret {
		if r >= 0x10000 {
			r1, r2 := 0xD800+(r-0x10000)>>10, 0xDC00+(r-0x10000)&0x3FF
			fmt.Fprintf(&allU, `\u%04x\u%04x`, r1, r2)
			fmt.Fprintf(&allUUpper, `\u%04X\u%04X`, r1, r2)
		} else {
			fmt.Fprintf(&allU, `\u%04x`, r)
			fmt.Fprintf(&allUUpper, `\u%04X`, r)
		}
	}
	slash.WriteString(strings.ReplaceAll(js(true), "/", `\/`))
	var dec, hexRef, hexRefZ, named strings.Builder
	for _, r := range secret {
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hexRef, "&#x%x;", r)
		fmt.Fprintf(&hexRefZ, "&#X%06X;", r)
	}
	named.WriteString(html.EscapeString(secret))
	var pctAll, pctLower, pctMixed strings.Builder
	for i, c := range b {
		fmt.Fprintf(&pctAll, "%%%02X", c)
		fmt.Fprintf(&pctLower, "%%%02x", c)
		if i%2 == 0 && c != '%' && c != '+' && c < 0x80 {
			pctMixed.WriteByte(c)
		} else {
			fmt.Fprintf(&pctMixed, "%%%02x", c)
		}
	}
	wrap := func(s string, n int, nl string) string {
		var w strings.Builder
		for len(s) > n {
			w.WriteString(s[:n] + nl)
			s = s[n:]
		}
		w.WriteString(s)
		return w.String()
	}
	long := []byte(strings.Repeat(secret, 4)) // longer than a line
	return map[string]string{
		"raw":                 secret,
		"hex":                 hex.EncodeToString(b),
		"HEX":                 strings.ToUpper(hex.EncodeToString(b)),
		"query escape":        url.QueryEscape(secret),
		"path escape":         url.PathEscape(secret),
		"percent all":         pctAll.String(),
		"percent all lower":   pctLower.String(),
		"percent some":        pctMixed.String(),
		"json":                js(true),
		"json no html escape": js(false),
		"json \\/":            slash.String(),
		// PHP's json_encode escapes "/" by default; the document then
		// lands in a URL or a base64 field.
		"json \\/ percent-encoded": url.QueryEscape(strings.ReplaceAll(js(false), "/", `\/`)),
		"json \\/ base64":          base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(js(false), "/", `\/`))),
		"json all \\u":             allU.String(),
		"json all \\U":             allUUpper.String(),
		"html escape":              named.String(),
		"html decimal":             dec.String(),
		"html hex":                 hexRef.String(),
		"html HEX zeros":           hexRefZ.String(),
		"base64 std":               base64.StdEncoding.EncodeToString(b),
		"base64 raw std":           base64.RawStdEncoding.EncodeToString(b),
		"base64 url":               base64.URLEncoding.EncodeToString(b),
		"base64 raw url":           base64.RawURLEncoding.EncodeToString(b),
		"basic":                    base64.StdEncoding.EncodeToString([]byte("bot:" + secret)),
		"mime":                     wrap(base64.StdEncoding.EncodeToString(long), 76, "\r\n"),
		"pem":                      wrap(base64.StdEncoding.EncodeToString(long), 64, "\n"),
		"mime header word":         mime.BEncoding.Encode("utf-8", secret),
	}
}

// The everyday decoders, run over the scrubbed text, no longer recover the
// secret.
func TestDecodersCannotRecover(t *testing.T) {
	const secret = `fake-Tok/en+1 "x" <&> é😀`
	s := New(Secret{Name: "T", Value: secret})
	b := []byte(secret)
	for name, tc := range map[string]struct {
		encoded string
		decode  func(string) string
	}{
		"hex": {hex.EncodeToString(b), func(x string) string {
			return decodeRuns(x, "0123456789abcdefABCDEF", func(r string) string {
				d, _ := hex.DecodeString(r[:len(r)/2*2])
				return string(d)
			})
		}},
		"url.QueryEscape": {url.QueryEscape(secret), func(x string) string { d, _ := url.QueryUnescape(x); return d }},
		"url.PathEscape":  {url.PathEscape(secret), func(x string) string { d, _ := url.PathUnescape(x); return d }},
		"encoding/json": {func() string {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(true)
			_ = enc.Encode(secret)
			return strings.TrimSpace(buf.String())
		}(), func(x string) string {
			var v string
			_ = json.Unmarshal([]byte(x), &v)
			return v
		}},
		"html numeric": {func() string {
			var w strings.Builder
			for _, r := range secret {
				fmt.Fprintf(&w, "&#x%X;", r)
			}
			return w.String()
		}(), html.UnescapeString},
		"html.EscapeString": {html.EscapeString(secret), html.UnescapeString},
		"base64 mime": {func() string {
			enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(secret, 3)))
			var w strings.Builder
			for len(enc) > 76 {
				w.WriteString(enc[:76] + "\r\n")
				enc = enc[76:]
			}
			w.WriteString(enc)
			return w.String()
		}(), func(x string) string {
			x = strings.NewReplacer("\r", "", "\n", "").Replace(x)
			return decodeRuns(x, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", func(r string) string {
				var out strings.Builder
				for skip := range 4 {
					if skip < len(r) {
						p := r[skip:]
						d, _ := base64.RawStdEncoding.DecodeString(p[:len(p)/4*4])
						out.Write(d)
						out.WriteByte(0)
					}
				}
				return out.String()
			})
		}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, tc.decode(tc.encoded), secret[:8], "the decoder works")
			in := "before " + tc.encoded + " after"
			out := s.String(in)
			assert.NotContains(t, tc.decode(out), secret[:8])
			assert.NotContains(t, tc.decode(strings.TrimSuffix(strings.TrimPrefix(out, "before "), " after")), secret[:8])
		})
	}
}

// decodeRuns decodes each run of alphabet characters in x.
func decodeRuns(x, alphabet string, dec func(string) string) string {
	var out strings.Builder
	for _, run := range strings.FieldsFunc(x, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }) {
		out.WriteString(dec(run))
		out.WriteByte(0)
	}
	return out.String()
}

// A reader starting inside a malformed escape sees what a decoder that
// starts after it sees: "%4" before "A%42" must not hide the "A".
func TestEscapeBeforeTheValue(t *testing.T) {
	s := New(Secret{Name: "T", Value: "ABCDEFGHIJ"})
	for _, in := range []string{
		"%4" + "A%42%43DEFGHIJ",
		"%" + "41%42%43DEFGHIJ",
		"&#x4" + "A&#66;CDEFGHIJ",
		"&#6" + "5BCDEFGHIJ",
		`\` + `\u0041BCDEFGHIJ`,
		`\u00` + `41BCDEFGHIJ`,
	} {
		got := check(t, s, in)
		assert.Contains(t, got, "[REDACTED:T]", in)
		assert.NotContains(t, got, "BCDEFGHIJ", in)
	}
}

// The scrubbing reader finds a value wherever the reads cut it.
func TestReaderAcrossReads(t *testing.T) {
	secret := "fake-0123456789abcdef/+&= \"<"
	sc := New(Secret{Name: "S", Value: secret, BasicUsers: []string{"bot"}})
	var encs []string
	for _, e := range encodingsOf(secret) {
		encs = append(encs, e)
	}
	text := "head " + strings.Join(encs, " | ") + " tail"
	want := sc.String(text)
	require.NotContains(t, want, secret)
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(strings.NewReader(text)) }},
		{"half", func() io.Reader { return iotest.HalfReader(strings.NewReader(text)) }},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(strings.NewReader(text)) }},
		{"whole", func() io.Reader { return strings.NewReader(text) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := io.ReadAll(iotest.OneByteReader(NewReader(io.NopCloser(tc.r()), sc)))
			require.NoError(t, err)
			assert.Equal(t, want, string(got))
		})
	}
	// Every cut of the text into two reads.
	for cut := range len(text) {
		r := io.MultiReader(strings.NewReader(text[:cut]), strings.NewReader(text[cut:]))
		got, err := io.ReadAll(NewReader(io.NopCloser(r), sc))
		require.NoError(t, err)
		require.Equal(t, want, string(got), "cut at %d", cut)
	}
	// A body of nothing but values, where every cut is straddled.
	dense := strings.Repeat(secret, 2*passEvery)
	got, err := io.ReadAll(NewReader(io.NopCloser(strings.NewReader(dense)), sc))
	require.NoError(t, err)
	assert.NotContains(t, string(got), secret)
	assert.Equal(t, strings.Count(dense, secret), strings.Count(string(got), "[REDACTED:S]"))

	// A failure mid-body ends the stream with what was scrubbed.
	got, err = io.ReadAll(NewReader(io.NopCloser(iotest.TimeoutReader(strings.NewReader(secret+" "+secret))), sc))
	assert.ErrorIs(t, err, iotest.ErrTimeout)
	assert.NotContains(t, string(got), secret)
}

// Header names reach a host in lower case (Go's transport and workerd
// re-case them), so a secret an origin puts in one, raw or base64 encoded,
// has lost its case: it is found in lower case, and the whole name goes.
func TestHeaderNamesAreScrubbedInLowerCase(t *testing.T) {
	secret := "Fake_Tok3n-AbCdEfGhIjKlMnOp"
	s := New(Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}}, Secret{Name: "S", Value: "ShOrT"})
	lower := func(v string) string { return "x-" + strings.ToLower(v) }
	b64 := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	for _, name := range []string{
		lower(secret),
		lower(b64(secret)),
		lower(base64.RawURLEncoding.EncodeToString([]byte(secret))),
		lower(b64("a" + secret + "zz")),
		lower(b64("ab" + secret)),
		lower(base64.RawURLEncoding.EncodeToString([]byte("abc:" + secret + "!"))),
		lower(b64("bot:" + secret)),
		lower(b64("Basic " + b64("bot:"+secret))),
		strings.ToUpper(hex.EncodeToString([]byte(secret))),
	} {
		got := s.Headers([]wire.Header{{name, "1"}})
		assert.Equal(t, []wire.Header{{"[REDACTED:T]", "1"}}, got, "%s", name)
	}
	for _, name := range []string{"content-type", "x-request-id", "x-" + strings.ToLower(secret[:len(secret)-1]) + "!", "x-short", lower(b64("ShOrT"))} {
		assert.Equal(t, []wire.Header{{name, "1"}}, s.Headers([]wire.Header{{name, "1"}}), "%s", name)
	}
}

// A stream hands out at once what no encoding can hold (the end of a JSON
// event, a line after punctuation), and holds back the run of letters,
// digits and escape characters that ends a chunk, whether or not it begins
// a secret.
func TestStreamHoldsBackTheRunThatEndsAChunk(t *testing.T) {
	s := New(Secret{Name: "T", Value: "fake+tok/en=="})
	e := newEngine(s)
	for _, step := range []struct{ in, out string }{
		{`data: {"x":1}` + "\n\n", `data: {"x":1}` + "\n\n"},
		{"event: ping\n\n", "event: "},
		{"data: [DONE]\n\n", "ping\n\ndata: [DONE]\n\n"},
		{"x fake+to", "x "},
		{"ok!", "fake+took!"},
		{" fa", " "},
		{"ke+tok/en== y", "[REDACTED:T] "},
		{"es.", "yes."},
		{"\n\n\nz", "\n\n\n"},
	} {
		assert.Equal(t, step.out, string(e.push([]byte(step.in))), "after %q", step.in)
	}
	assert.Equal(t, "z", string(e.flush()))
}

// handedOut is how many bytes a stream hands out after each chunk.
func handedOut(s *Scrubber, chunks ...string) []int {
	e := newEngine(s)
	var out []int
	for _, c := range chunks {
		out = append(out, len(e.push([]byte(c))))
	}
	return out
}

// A hostile origin that sends a guess at a secret and pauses must learn
// nothing from what the stream hands out before the pause: if that
// depended on whether the guess begins a secret's encoding, it could
// recover the secret a byte at a time. What is handed out depends only on
// the bytes read, the same for every secret of a length, in every encoding
// the scrubber finds.
func TestStreamHoldBackIsNotAnOracle(t *testing.T) {
	secret := "fake-rt+0123456789abcdef0123456789abcdef/="
	other := "fake-rt+fedcba9876543210fedcba9876543210/="
	sc, oc := New(Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}}), New(Secret{Name: "T", Value: other, BasicUsers: []string{"bot"}})
	require.Equal(t, sc.HoldBack(), oc.HoldBack())
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/="
	for name, enc := range encodingsOf(secret) {
		t.Run(name, func(t *testing.T) {
			for _, known := range []int{0, 1, 5, len(enc) / 2, len(enc) - 1} {
				var lengths []int
				for i := range len(alphabet) {
					guess := "}" + enc[:known] + alphabet[i:i+1]
					// The pause: what the first chunk gave is all it learns.
					got := handedOut(sc, guess)[0]
					require.Equal(t, handedOut(oc, guess)[0], got, "guess %q: another secret's stream hands out otherwise", guess)
					lengths = append(lengths, got)
				}
				for i, n := range lengths {
					require.Equal(t, lengths[0], n, "knowing %d bytes of the %s form, the guess %q stands out", known, name, alphabet[i:i+1])
				}
			}
		})
	}
	// The attack itself, as a model would run it: nothing is recovered.
	var recovered string
	for len(recovered) < 8 {
		best, held := "", -1
		for i := range len(alphabet) {
			probe := "}" + recovered + alphabet[i:i+1]
			if h := len(probe) - handedOut(sc, probe)[0]; h > held {
				best, held = alphabet[i:i+1], h
			}
		}
		recovered += best
	}
	assert.NotEqual(t, secret[:8], recovered)
}

// FuzzStreamHoldBack: for any text, a stream hands out after each chunk the
// same number of bytes whichever of two secrets of one length it looks for,
// so long as the text holds neither.
func FuzzStreamHoldBack(f *testing.F) {
	f.Add("}fake-rt+0", "12")
	f.Add("ZmFrZS1", "ydCsw")
	f.Add("%66%61%6", "b")
	f.Add("&#102;&#97", ";")
	f.Add("\\u0066\\u006", "1")
	f.Add("666172\n", "6")
	a, b := "fake-rt+0123456789abcdef/=", "fake-rt+fedcba9876543210/="
	sa, sb := New(Secret{Name: "T", Value: a, BasicUsers: []string{"bot"}}), New(Secret{Name: "T", Value: b, BasicUsers: []string{"bot"}})
	f.Fuzz(func(t *testing.T, c1, c2 string) {
		if sa.String(c1+c2) != c1+c2 || sb.String(c1+c2) != c1+c2 {
			return // a secret is in the text: its redaction shows anyway
		}
		require.Equal(t, handedOut(sa, c1, c2), handedOut(sb, c1, c2))
	})
}
