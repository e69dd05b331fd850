package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// needles are the forms of secret that the standard library and the usual
// encoders write, every one of which a Scrubber must remove.
func needles(secret string) []string {
	b := []byte(secret)
	out := []string{
		secret,
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(secret), url.PathEscape(secret), pctAll(secret), strings.ToLower(pctAll(secret)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		base64.StdEncoding.EncodeToString([]byte("bot:" + secret)),
	}
	if utf8.ValidString(secret) {
		for _, escapeHTML := range []bool{false, true} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(escapeHTML)
			_ = enc.Encode(secret)
			js := strings.TrimSpace(buf.String())
			out = append(out, js[1:len(js)-1])
		}
		var u, dec, hx strings.Builder
		for _, r := range secret {
			if r >= 0x10000 {
				fmt.Fprintf(&u, `\u%04X\u%04x`, 0xD800+(r-0x10000)>>10, 0xDC00+(r-0x10000)&0x3FF)
			} else {
				fmt.Fprintf(&u, `\u%04x`, r)
			}
			fmt.Fprintf(&dec, "&#%d;", r)
			fmt.Fprintf(&hx, "&#x%X;", r)
		}
		out = append(out, u.String(), html.EscapeString(secret))
		// HTML reads &#128; to &#159; as windows-1252: no decoder gets
		// such a character back from a numeric reference.
		if !strings.ContainsFunc(secret, func(r rune) bool { return 0x80 <= r && r <= 0x9F }) {
			out = append(out, dec.String(), hx.String())
		}
	}
	return out
}

// FuzzScrub embeds each form of a secret in arbitrary text and requires
// that none of the forms is left, that a stream split anywhere gives what
// the whole text gives, and that a stream holds back no more than
// HoldBack.
func FuzzScrub(f *testing.F) {
	f.Add("fake+tok/en==", "before ", " after", uint8(0), uint16(5))
	f.Add(`p@ss w0rd "q" \ & <`, "%4", "%", uint8(4), uint16(9))
	f.Add("ключ-ünï-€-😀", `\`, `\u`, uint8(15), uint16(1))
	f.Add("ABCDEFGHIJ", "&#x4", "&#", uint8(17), uint16(3))
	f.Add("0123456789abcdef", "dead", "beef", uint8(1), uint16(20))
	f.Add("fake-token-1234", "QUJD", "==\r\n", uint8(7), uint16(30))
	f.Fuzz(func(t *testing.T, secret, prefix, suffix string, which uint8, split uint16) {
		if len(secret) < MinEncodedLen || len(secret) > 48 || len(prefix) > 64 || len(suffix) > 64 || strings.ContainsRune(secret, 0) {
			return
		}
		s := New(Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}})
		forms := needles(secret)
		in := []byte(prefix + forms[int(which)%len(forms)] + suffix)
		whole := s.Bytes(in)
		require.Equal(t, string(whole), string(awake(s, in)), "with every view awake")
		left := bytes.ReplaceAll(whole, []byte("[REDACTED:T]"), []byte{0})
		for _, n := range forms {
			require.NotContains(t, string(left), n, "in %q", in)
		}
		cut := int(split) % (len(in) + 1)
		e := newEngine(s)
		got := append([]byte(nil), e.push(in[:cut])...)
		require.LessOrEqual(t, e.pos-e.emitted, s.HoldBack())
		// What a stream holds back is the run spanClass says: every match
		// that may still begin lies inside it.
		require.GreaterOrEqual(t, e.live(), e.pos-e.span, "a match may begin before the run held back, in %q", in[:cut])
		got = append(got, e.push(in[cut:])...)
		require.LessOrEqual(t, e.pos-e.emitted, s.HoldBack())
		require.GreaterOrEqual(t, e.live(), e.pos-e.span, "a match may begin before the run held back, in %q", in)
		got = append(got, e.flush()...)
		require.Equal(t, string(whole), string(got), "split at %d", cut)
		require.Zero(t, e.late)
	})
}
