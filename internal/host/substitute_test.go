package host

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// Fake secrets: obviously not real credentials.
var fakeSecrets = map[string]string{
	"GITHUB_TOKEN": "test-token-123",
	"SHOP_TOKEN":   "",
}

func fakeLookup(name string) (string, bool) {
	v, ok := fakeSecrets[name]
	return v, ok && v != ""
}

func headersOf(hs []policy.Header) []wire.Header {
	out := make([]wire.Header, len(hs))
	for i, h := range hs {
		out[i] = wire.Header{h.Name, h.Value}
	}
	return out
}

func TestSubstitute(t *testing.T) {
	p, err := policy.New(policy.GitHub(), policy.GitHubGit(),
		policy.NewService("shop", "https://api.shop.test").Credential("Authorization", "Bearer ${secret:SHOP_TOKEN}"))
	require.NoError(t, err)
	e, err := policy.Compile(p)
	require.NoError(t, err)

	d := e.Evaluate(&policy.Request{URL: "https://api.github.com/user", Headers: []policy.Header{{Name: "Accept", Value: "x"}}}, nil)
	require.True(t, d.Allow)
	out, err := Substitute(headersOf(d.Headers), "https://api.github.com", e, fakeLookup)
	require.NoError(t, err)
	require.Equal(t, []wire.Header{{"Accept", "x"}, {"Authorization", "Bearer test-token-123"}}, out)
	require.Equal(t, "Bearer ${secret:GITHUB_TOKEN}", d.Headers[1].Value, "the decision is not modified")

	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://github.com/o/r.git/git-upload-pack"}, nil)
	require.True(t, d.Allow)
	out, err = Substitute(headersOf(d.Headers), "https://github.com", e, fakeLookup)
	require.NoError(t, err)
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:test-token-123")), out[0][1])

	// The host refuses a placeholder for an origin that does not own it,
	// whatever put it there.
	gh := []wire.Header{{"Authorization", "Bearer ${secret:GITHUB_TOKEN}"}}
	for _, origin := range []string{"https://evil.test", "https://api.anthropic.com", "http://api.github.com", "https://api.github.com:8443", "https://API.github.com"} {
		_, err = Substitute(gh, origin, e, fakeLookup)
		require.ErrorIs(t, err, ErrNotOwned, origin)
		require.NotContains(t, err.Error(), "test-token-123")
	}

	for name, hs := range map[string][]wire.Header{
		"unknown secret":     {{"A", "${secret:OTHER_TOKEN}"}},
		"unterminated":       {{"A", "${secret:GITHUB_TOKEN"}},
		"unknown kind":       {{"A", "${env:GITHUB_TOKEN}"}},
		"lower-case name":    {{"A", "${secret:github_token}"}},
		"basic without user": {{"A", "${basic::GITHUB_TOKEN}"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Substitute(hs, "https://api.shop.test", e, fakeLookup)
			require.Error(t, err)
			require.Equal(t, name == "unknown secret", errors.Is(err, ErrNotOwned), "%v", err)
		})
	}
	_, err = Substitute([]wire.Header{{"A", "${secret:SHOP_TOKEN}"}}, "https://api.shop.test", e, fakeLookup)
	require.ErrorContains(t, err, "secret SHOP_TOKEN is not configured")

	_, err = Substitute(gh, "https://api.github.com", e, func(string) (string, bool) { return "line\nbreak", true })
	require.ErrorContains(t, err, "control character")
}
