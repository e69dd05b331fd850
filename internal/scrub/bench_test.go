package scrub

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// benchSecrets are three secrets of the lengths API keys have.
var benchSecrets = []Secret{
	{Name: "GITHUB_TOKEN", Value: "fake_ghp_0123456789abcdefghijABCDEFGHIJ0123", BasicUsers: []string{"x-access-token"}},
	{Name: "ANTHROPIC_API_KEY", Value: "fake-sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGH"},
	{Name: "STORE_KEY", Value: "fake/store+key=0123456789"},
}

// benchBody is 64 KiB of a JSON API response: text with escapes, URLs,
// base64 and a few secrets in it.
func benchBody() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "model", "said", "hello", "world", `\n`, `\"quoted\"`, "https://api.example.test/v1/items?page=2&q=a%20b",
		"&amp;", "dGhpcyBpcyBiYXNlNjQ=", "0123456789abcdef", "{", "}", ":", ",", "data:"}
	var b bytes.Buffer
	b.WriteString(`{"content":"`)
	for b.Len() < 64<<10-200 {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
		if r.IntN(400) == 0 {
			b.WriteString(benchSecrets[r.IntN(3)].Value)
		}
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// BenchmarkBytes64K scrubs a 64 KiB body for three secrets, whole.
func BenchmarkBytes64K(b *testing.B) {
	s := New(benchSecrets...)
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s.Bytes(body)
	}
}

// BenchmarkReader64K scrubs the same body read through NewReader in 4 KiB
// chunks.
func BenchmarkReader64K(b *testing.B) {
	s := New(benchSecrets...)
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, 4096)
	for b.Loop() {
		r := NewReader(io.NopCloser(bytes.NewReader(body)), s)
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}

// BenchmarkNew compiles the three secrets.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New(benchSecrets...)
	}
}

// adversarial are 1 MiB bodies built to make a scrubber do the most work:
// escapes that never end, runs of base64 or hex, prefixes of secrets
// repeated, secrets back to back.
func adversarial() map[string][]byte {
	const n = 1 << 20
	rep := func(s string) []byte { return bytes.Repeat([]byte(s), n/len(s)+1)[:n] }
	s0 := benchSecrets[0].Value
	return map[string][]byte{
		"percent signs":        rep("%"),
		"percent hex":          rep("%4"),
		"percent escapes":      rep("%41"),
		"html ampersands":      rep("&#"),
		"html long refs":       rep("&#x0000000"),
		"html names":           rep("&amp"),
		"json backslashes":     rep(`\`),
		"json unicode":         rep(`\u00`),
		"json surrogates":      rep(`\uD83D`),
		"base64 alphabet":      rep("A"),
		"base64 with breaks":   rep("QUJD\r\n"),
		"hex digits":           rep("0"),
		"secret prefix":        rep(s0[:len(s0)-1]),
		"secret escaped":       rep(url.QueryEscape(s0[:20])),
		"secrets back to back": rep(s0),
		"base64 of prefixes":   rep(base64.StdEncoding.EncodeToString([]byte(s0[:30]))),
		"all escaped percent":  rep(pctAll(s0[:len(s0)-1])),
		"short secret":         rep("ab"),
	}
}

func pctAll(s string) string {
	var w strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&w, "%%%02X", s[i])
	}
	return w.String()
}

// Scrubbing costs linear work whatever the body: the automaton steps a
// body takes are bounded by a constant times its length (counted, not
// timed), and a stream of it holds back no more than HoldBack.
func TestAdversarialBodiesCostLinearWork(t *testing.T) {
	s := New(append(benchSecrets, Secret{Name: "SHORT", Value: "ab"})...)
	// Per source byte: each of the 5 views steps its text matcher once and
	// its base64 decoders 3 times, the raw view its hex decoders once; an
	// escape starts a few alts that live while they match.
	const perByte = 48
	for name, body := range adversarial() {
		t.Run(name, func(t *testing.T) {
			e := s.get()
			e.src, e.lazy = body, true
			e.write(body)
			e.finish()
			assert.Zero(t, e.late)
			assert.LessOrEqual(t, e.ops, perByte*len(body), "%.1f steps a byte", float64(e.ops)/float64(len(body)))
			t.Logf("%.1f steps a byte", float64(e.ops)/float64(len(body)))
			s.put(e)

			st := newEngine(s)
			held := 0
			for off := 0; off < len(body); off += 1000 {
				st.push(body[off:min(off+1000, len(body))])
				held = max(held, st.pos-st.emitted)
			}
			st.flush()
			require.LessOrEqual(t, held, s.HoldBack())
			require.LessOrEqual(t, st.ops, perByte*len(body))
		})
	}
}

// BenchmarkBytes64KModelText scrubs 64 KiB of a model's streamed answer as
// JSON: a "\n" escape per line, no '%', '&' or '+', so three of the four
// escape views sleep.
func BenchmarkBytes64KModelText(b *testing.B) {
	s := New(benchSecrets...)
	var body bytes.Buffer
	line := `The scrubber reads every byte through each view, and the views that see no escape sleep.\n`
	for body.Len() < 64<<10 {
		body.WriteString(line)
	}
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		s.Bytes(body.Bytes())
	}
}
