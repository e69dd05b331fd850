package policy_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

// Fake secrets: obviously not real credentials.
var fakeSecrets = map[string]string{
	"GITHUB_TOKEN":      "test-token-123",
	"ANTHROPIC_API_KEY": "test-key/with+odd chars",
}

func lookup(name string) (string, bool) {
	v, ok := fakeSecrets[name]
	return v, ok
}

func TestSubstitute(t *testing.T) {
	e := fixture(t)

	d := e.Evaluate(&policy.Request{URL: "https://api.github.com/user", Headers: []policy.Header{{Name: "Accept", Value: "x"}}}, nil)
	require.True(t, d.Allow)
	out, err := policy.Substitute(d.Headers, "https://api.github.com", e, lookup)
	require.NoError(t, err)
	require.Equal(t, []policy.Header{{Name: "Accept", Value: "x"}, {Name: "Authorization", Value: "Bearer test-token-123"}}, out)
	require.Equal(t, "Bearer ${secret:GITHUB_TOKEN}", d.Headers[1].Value, "the decision is not modified")

	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://github.com/o/r.git/git-upload-pack"}, nil)
	require.True(t, d.Allow)
	out, err = policy.Substitute(d.Headers, "https://github.com", e, lookup)
	require.NoError(t, err)
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:test-token-123")), out[0].Value)

	// The host refuses a placeholder for an origin that does not own it,
	// whatever put it there.
	gh := []policy.Header{{Name: "Authorization", Value: "Bearer ${secret:GITHUB_TOKEN}"}}
	for _, origin := range []string{"https://evil.test", "https://api.anthropic.com", "http://api.github.com", "https://api.github.com:8443", "https://API.github.com"} {
		_, err = policy.Substitute(gh, origin, e, lookup)
		require.ErrorIs(t, err, policy.ErrNotOwned, origin)
		require.NotContains(t, err.Error(), "test-token-123")
	}

	for name, hs := range map[string][]policy.Header{
		"unknown secret":     {{Name: "A", Value: "${secret:SHOP_TOKEN}"}},
		"unterminated":       {{Name: "A", Value: "${secret:GITHUB_TOKEN"}},
		"unknown kind":       {{Name: "A", Value: "${env:GITHUB_TOKEN}"}},
		"lower-case name":    {{Name: "A", Value: "${secret:github_token}"}},
		"basic without user": {{Name: "A", Value: "${basic::GITHUB_TOKEN}"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policy.Substitute(hs, "https://api.shop.test", e, lookup)
			require.Error(t, err)
			require.False(t, errors.Is(err, policy.ErrNotOwned) && name != "unknown secret")
		})
	}
	_, err = policy.Substitute([]policy.Header{{Name: "A", Value: "${secret:SHOP_TOKEN}"}}, "https://api.shop.test", e, lookup)
	require.ErrorContains(t, err, "secret SHOP_TOKEN is not configured")

	_, err = policy.Substitute(gh, "https://api.github.com", e, func(string) (string, bool) { return "line\nbreak", true })
	require.ErrorContains(t, err, "control character")
}

func TestScrubber(t *testing.T) {
	e := fixture(t)
	s := e.Scrubber(lookup)
	gh, an := fakeSecrets["GITHUB_TOKEN"], fakeSecrets["ANTHROPIC_API_KEY"]
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
			require.Equal(t, tc.want, s.String(tc.in))
			require.Equal(t, tc.want, string(s.Bytes([]byte(tc.in))))
		})
	}
	require.Equal(t, []policy.Header{{Name: "X-Echo", Value: "Bearer [REDACTED:GITHUB_TOKEN]"}},
		s.Headers([]policy.Header{{Name: "X-Echo", Value: "Bearer " + gh}}))
	// The longest text looked for is the core of the Basic header's base64
	// text, base64'd again at offset 0: every 6 of its bits one character.
	require.Equal(t, len(basic)*8/6, s.MaxLen())

	plain := policy.NewScrubber(policy.Secret{Name: "K", Value: "test-token-123", BasicUsers: []string{"bot"}}, policy.Secret{Name: "EMPTY"})
	require.Equal(t, "Basic [REDACTED:K]", plain.String("Basic "+base64.StdEncoding.EncodeToString([]byte("bot:test-token-123"))))
	require.Equal(t, "unchanged", plain.String("unchanged"), "an empty secret matches nothing")
}

// An endpoint may echo the Authorization header it received inside a
// base64 document, so the value starts wherever the text before it puts
// it: at any of the three byte offsets in a base64 group, and followed by
// more text.
func TestScrubberBase64Unaligned(t *testing.T) {
	const secret = "test-token-123" // 14 bytes: cores of 18 characters
	s := policy.NewScrubber(policy.Secret{Name: "T", Value: secret, BasicUsers: []string{"bot"}})
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
			got := s.String(in)
			require.Contains(t, got, "[REDACTED:T]")
			require.Equal(t, got, string(s.Bytes([]byte(in))))
		})
	}
	// Only the characters mixed with the text around the value are left.
	require.Equal(t, "eyJhdXRoIjoiQmVhcmVyIH[REDACTED:T]In0=",
		s.String(base64.StdEncoding.EncodeToString([]byte(`{"auth":"Bearer `+secret+`"}`))))
	// Aligned and whole, the padding goes too, as before.
	require.Equal(t, "[REDACTED:T]", s.String(base64.StdEncoding.EncodeToString([]byte(secret))))
}

// A core shorter than the threshold is not looked for: it would match
// ordinary base64 by chance. Such a value is still found raw and encoded
// as a whole.
func TestScrubberBase64ShortValue(t *testing.T) {
	const secret = "short-val" // 9 bytes: cores of 12, 11 and 11 characters
	s := policy.NewScrubber(policy.Secret{Name: "T", Value: secret})
	std := base64.StdEncoding.EncodeToString

	for _, tc := range []struct {
		name, in, want string
	}{
		{"whole, as before", std([]byte(secret)), "[REDACTED:T]"},
		{"offset 0, core of 12", std([]byte(secret + "!")), "[REDACTED:T]IQ=="},
		{"offset 1, core of 11: not looked for", std([]byte("x" + secret)), std([]byte("x" + secret))},
		{"offset 2, core of 11: not looked for", std([]byte("xy" + secret)), std([]byte("xy" + secret))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, s.String(tc.in))
		})
	}
	require.Equal(t, "[REDACTED:X]", policy.NewScrubber(policy.Secret{Name: "X", Value: "ab"}).String("ab"))
	require.Equal(t, "YWJj", policy.NewScrubber(policy.Secret{Name: "X", Value: "ab"}).String("YWJj"), "base64 of abc starts like that of ab")
}
