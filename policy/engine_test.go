package policy_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

func compile(t *testing.T, services ...*policy.ServiceBuilder) *policy.Engine {
	t.Helper()
	p, err := policy.New(services...)
	require.NoError(t, err)
	e, err := policy.Compile(p)
	require.NoError(t, err)
	return e
}

func TestLimits(t *testing.T) {
	e := compile(t, policy.NewService("search", "https://api.search.test").
		Allow(
			policy.On("/v1/search", "GET").ID("search").Limit(2),
			// Would allow the same requests, but the first matching rule
			// decides: a used-up limit denies.
			policy.On("/v1/**", "GET").ID("everything"),
		))
	req := &policy.Request{URL: "https://api.search.test/v1/search?q=x"}

	counters := policy.CounterMap{}
	for i := 0; i < 2; i++ {
		d := e.Evaluate(req, counters)
		require.True(t, d.Allow)
		require.Equal(t, "search", d.Rule)
		require.Equal(t, "search", d.Counter)
		counters[d.Counter]++
	}
	d := e.Evaluate(req, counters)
	require.False(t, d.Allow)
	require.Equal(t, policy.ReasonLimit, d.Reason)
	require.Equal(t, "search", d.Rule)
	require.Empty(t, d.Counter)

	d = e.Evaluate(&policy.Request{URL: "https://api.search.test/v1/other"}, counters)
	require.True(t, d.Allow)
	require.Equal(t, "everything", d.Rule)
	require.Empty(t, d.Counter, "a rule without a limit counts nothing")

	d = e.Evaluate(req, nil)
	require.True(t, d.Allow, "no counters means nothing used yet")
}

func TestReportMode(t *testing.T) {
	e := compile(t,
		policy.NewService("beta", "https://api.beta.test").
			Report().
			Credential("Authorization", "Bearer ${secret:BETA_TOKEN}").
			Deny(policy.On("/admin/**").ID("beta-admin")),
		policy.NewService("strict", "https://api.strict.test"),
	)
	d := e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.beta.test/admin/x"}, nil)
	require.True(t, d.Allow)
	require.True(t, d.Report)
	require.Equal(t, policy.ReasonDenyRule, d.Reason)
	require.Equal(t, "beta-admin", d.Rule)
	require.Equal(t, []policy.Header{{Name: "Authorization", Value: "Bearer ${secret:BETA_TOKEN}"}}, d.Headers)
	require.NoError(t, d.Err())

	d = e.Evaluate(&policy.Request{Method: "GET", URL: "https://api.beta.test/v1"}, nil)
	require.True(t, d.Allow)
	require.True(t, d.Report, "deny-all level would deny")
	require.Equal(t, policy.ReasonDenyLevel, d.Reason)

	// Report mode is per service: the other service enforces.
	d = e.Evaluate(&policy.Request{URL: "https://api.strict.test/"}, nil)
	require.False(t, d.Allow)
	require.False(t, d.Report)

	// Some requests can never be sent, report mode or not.
	for _, req := range []policy.Request{
		{URL: "https://user@api.beta.test/"},
		{URL: "https://api.beta.test/a%2Fb"},
		{URL: "https://api.beta.test/", Headers: []policy.Header{{Name: "X-Token", Value: "${secret:BETA_TOKEN}"}}},
		{URL: "https://api.beta.test/", Headers: []policy.Header{{Name: "X-A", Value: "a\nb"}}},
		{Method: "TRACE", URL: "https://api.beta.test/"},
	} {
		d := e.Evaluate(&req, nil)
		require.False(t, d.Allow, "%+v", req)
		require.False(t, d.Report)
	}
}

func TestPolicyReportModeCoversUnknownHosts(t *testing.T) {
	p, err := policy.New(policy.NewService("strict", "https://api.strict.test"))
	require.NoError(t, err)
	p.Mode = policy.Report
	e, err := policy.Compile(p)
	require.NoError(t, err)

	d := e.Evaluate(&policy.Request{URL: "https://elsewhere.test/x", Headers: []policy.Header{
		{Name: "Accept", Value: "*/*"}, {Name: "Cookie", Value: "a=b"},
	}}, nil)
	require.True(t, d.Allow)
	require.True(t, d.Report)
	require.Equal(t, policy.ReasonNoService, d.Reason)
	require.Equal(t, []policy.Header{{Name: "Accept", Value: "*/*"}}, d.Headers)

	d = e.Evaluate(&policy.Request{URL: "http://169.254.169.254/"}, nil)
	require.False(t, d.Allow, "an IP the policy does not name is never reached")
	require.Equal(t, policy.ReasonIPLiteral, d.Reason)
}

func TestHeaderAllowlist(t *testing.T) {
	e := fixture(t)
	d := e.Evaluate(&policy.Request{
		Method: "POST",
		URL:    "https://api.anthropic.com/v1/messages",
		Headers: []policy.Header{
			{Name: "Content-Type", Value: "application/json"},
			{Name: "anthropic-version", Value: "2023-06-01"},
			{Name: "X-API-Key", Value: "agent-supplied"},
			{Name: "Authorization", Value: "Bearer agent-supplied"},
			{Name: "Cookie", Value: "session=1"},
			{Name: "Host", Value: "evil.test"},
			{Name: "X-Forwarded-For", Value: "10.0.0.1"},
			{Name: "X-Original-URL", Value: "/admin"},
			{Name: "Accept-Encoding", Value: "gzip"},
			{Name: "Accept", Value: "a"},
			{Name: "accept", Value: "b"},
		},
	}, nil)
	require.True(t, d.Allow)
	require.Equal(t, []policy.Header{
		{Name: "Content-Type", Value: "application/json"},
		{Name: "anthropic-version", Value: "2023-06-01"},
		{Name: "Accept", Value: "a"},
		{Name: "accept", Value: "b"},
		{Name: "x-api-key", Value: "${secret:ANTHROPIC_API_KEY}"},
	}, d.Headers)

	d = e.Evaluate(&policy.Request{URL: "https://github.com/o/r.git/info/refs?service=git-upload-pack", Headers: []policy.Header{
		{Name: "Git-Protocol", Value: "version=2"}, {Name: "Authorization", Value: "Basic agent"},
	}}, nil)
	require.True(t, d.Allow)
	require.Equal(t, []policy.Header{
		{Name: "Git-Protocol", Value: "version=2"},
		{Name: "Authorization", Value: "${basic:x-access-token:GITHUB_TOKEN}"},
	}, d.Headers)

	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages", Headers: []policy.Header{
		{Name: "X-Original-URL", Value: "/admin"},
	}}, nil)
	require.True(t, d.Allow)
	require.Equal(t, []policy.Header{{Name: "x-api-key", Value: "${secret:ANTHROPIC_API_KEY}"}}, d.Headers)
}

func TestMethodOverrideNamedByRule(t *testing.T) {
	e := fixture(t)
	d := e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.shop.test/v1/orders/7/cancel", Headers: []policy.Header{
		{Name: "x-http-method-override", Value: "DELETE"},
	}}, nil)
	require.True(t, d.Allow)
	require.Equal(t, "shop-cancel", d.Rule)
	require.Contains(t, d.Headers, policy.Header{Name: "x-http-method-override", Value: "DELETE"})

	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.shop.test/v1/orders/7/cancel", Headers: []policy.Header{
		{Name: "X-Method-Override", Value: "DELETE"},
	}}, nil)
	require.False(t, d.Allow, "the rule names one override header, not all")
	require.Equal(t, policy.ReasonMethodOverride, d.Reason)
}

func TestDenyError(t *testing.T) {
	e := fixture(t)
	d := e.Evaluate(&policy.Request{Method: "DELETE", URL: "https://api.shop.test/v1/orders/7"}, nil)
	err := d.Err()
	var de *policy.DenyError
	require.True(t, errors.As(err, &de))
	require.Equal(t, policy.ReasonDenyRule, de.Decision.Reason)
	require.EqualError(t, err, "policy: denied DELETE https://api.shop.test/v1/orders/7: deny-rule, service shop, rule shop-order-delete")

	d = e.Evaluate(&policy.Request{URL: "https://a@b.test/"}, nil)
	require.EqualError(t, d.Err(), "policy: denied GET: bad-url (userinfo (user:password@) in URL)")
}

func TestEvaluateIntoReusesHeaders(t *testing.T) {
	e := fixture(t)
	var d policy.Decision
	req := &policy.Request{URL: "https://api.github.com/user", Headers: []policy.Header{{Name: "Accept", Value: "x"}}}
	e.EvaluateInto(&d, req, nil)
	require.True(t, d.Allow)
	require.Len(t, d.Headers, 2)
	first := &d.Headers[0]

	e.EvaluateInto(&d, &policy.Request{URL: "https://evil.test/"}, nil)
	require.False(t, d.Allow)
	require.Empty(t, d.Headers)
	require.Empty(t, d.Service)

	e.EvaluateInto(&d, req, nil)
	require.Same(t, first, &d.Headers[0])
}

func TestEmptyBodyMatchesNoBodyRule(t *testing.T) {
	e := compile(t, policy.NewService("svc", "https://api.example.test").Level(policy.AllowAll).
		Deny(policy.On("/v1/**").JSON("/dangerous", true).ID("no-danger")))
	d := e.Evaluate(&policy.Request{Method: "GET", URL: "https://api.example.test/v1/x"}, nil)
	require.True(t, d.Allow, "an empty body holds nothing a deny rule looks for")
	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.example.test/v1/x", Body: []byte("not json")}, nil)
	require.False(t, d.Allow, "a body the rule cannot read is denied")
	require.Equal(t, "no-danger", d.Rule)
	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.example.test/v1/x", Body: []byte(`{"dangerous":false}`)}, nil)
	require.True(t, d.Allow)
	d = e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.example.test/v1/x", Body: []byte(`{"dangerous":true}`)}, nil)
	require.False(t, d.Allow)
}

func TestGraphQLDenyRuleCountsAnyOperation(t *testing.T) {
	e := compile(t, policy.NewService("gql", "https://api.gql.test").Level(policy.AllowAll).
		Deny(policy.On("/graphql", "POST").GraphQL("mutation").ID("no-mutations")).
		Allow(policy.On("/graphql", "POST").GraphQL("query").GraphQLNames("Viewer").ID("viewer")))
	post := func(body string) policy.Decision {
		return e.Evaluate(&policy.Request{Method: "POST", URL: "https://api.gql.test/graphql", Body: []byte(body)}, nil)
	}
	d := post(gql("query Viewer { viewer { login } } mutation M { x }"))
	require.False(t, d.Allow)
	require.Equal(t, "no-mutations", d.Rule)
	d = post(`[` + gql("query Viewer { a }") + `,` + gql("mutation { x }") + `]`)
	require.False(t, d.Allow)
	d = post(`{not json`)
	require.False(t, d.Allow, "a deny rule that cannot read the body matches")
	require.Equal(t, "no-mutations", d.Rule)
	d = post(gql("query Viewer { a }"))
	require.True(t, d.Allow)
	require.Equal(t, "viewer", d.Rule)
	d = post(gql("query Other { a }"))
	require.True(t, d.Allow, "not the named operation: the level decides")
	require.Equal(t, policy.ReasonAllowLevel, d.Reason)
	d = post(gql("{ a }"))
	require.Equal(t, policy.ReasonAllowLevel, d.Reason, "anonymous operations have no name to match")
}

func TestQueryConstraints(t *testing.T) {
	e := compile(t, policy.NewService("svc", "https://api.example.test").Allow(
		policy.On("/search", "GET").QueryPattern("q", "[a-z ]+").QueryAbsent("debug").ID("search"),
	))
	for url, want := range map[string]bool{
		"https://api.example.test/search?q=go+lang":         true,
		"https://api.example.test/search?q=go%20lang&x=1":   true,
		"https://api.example.test/search?q=go&q=rust":       true,
		"https://api.example.test/search?q=go&q=Rust":       false,
		"https://api.example.test/search?q=go%26debug%3D1":  false,
		"https://api.example.test/search?q=go&debug=1":      false,
		"https://api.example.test/search?q=go&debug":        false,
		"https://api.example.test/search?q=go&%64ebug=1":    false,
		"https://api.example.test/search?q=go&debug%00=1":   false,
		"https://api.example.test/search":                   false,
		"https://api.example.test/search?Q=go":              false,
		"https://api.example.test/search?q=go#&debug=1":     true,
		"https://api.example.test/search?q=%E2%82%AC":       false,
		"https://api.example.test/search?q=go&debug+=1":     true,
		"https://api.example.test/search?q=go&q":            false,
		"https://api.example.test/search?q=go&&q=go":        true,
		"https://api.example.test/search?q=go&q=go%0Adebug": false,
	} {
		d := e.Evaluate(&policy.Request{URL: url}, nil)
		require.Equal(t, want, d.Allow, "%s: %+v", url, d)
	}
}

func TestOwns(t *testing.T) {
	e := fixture(t)
	require.True(t, e.Owns("https://api.github.com", "GITHUB_TOKEN"))
	require.True(t, e.Owns("https://github.com", "GITHUB_TOKEN"))
	require.False(t, e.Owns("https://api.github.com", "ANTHROPIC_API_KEY"))
	require.False(t, e.Owns("https://evil.test", "GITHUB_TOKEN"))
	require.False(t, e.Owns("http://api.github.com", "GITHUB_TOKEN"))
	require.False(t, e.Owns("https://API.github.com", "GITHUB_TOKEN"), "only canonical origins")
	require.False(t, e.Owns("https://api.github.com/", "GITHUB_TOKEN"), "an origin has no path")
	require.False(t, e.Owns("https://user@api.github.com", "GITHUB_TOKEN"))
}
