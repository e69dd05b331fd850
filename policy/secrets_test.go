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
	require.Equal(t, len(base64.StdEncoding.EncodeToString([]byte("x-access-token:"+gh))), s.MaxLen())

	plain := policy.NewScrubber(policy.Secret{Name: "K", Value: "test-token-123", BasicUsers: []string{"bot"}}, policy.Secret{Name: "EMPTY"})
	require.Equal(t, "Basic [REDACTED:K]", plain.String("Basic "+base64.StdEncoding.EncodeToString([]byte("bot:test-token-123"))))
	require.Equal(t, "unchanged", plain.String("unchanged"), "an empty secret matches nothing")
}
