package policy_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

func TestJSONRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/policy.json")
	require.NoError(t, err)
	fromFile, err := policy.Parse(data)
	require.NoError(t, err)
	_, err = policy.Compile(fromFile)
	require.NoError(t, err)

	for name, p := range map[string]policy.Policy{"file": fromFile, "fixture": fixturePolicy(t)} {
		t.Run(name, func(t *testing.T) {
			first, err := json.Marshal(p)
			require.NoError(t, err)
			back, err := policy.Parse(first)
			require.NoError(t, err)
			second, err := json.Marshal(back)
			require.NoError(t, err)
			require.Equal(t, string(first), string(second))
		})
	}
}

func TestParseRejects(t *testing.T) {
	const svc = `{"name":"x","target":"https://x.test","level":"deny-all"}`
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", `{"version":1,"services":[{"name":"x","target":"https://x.test","level":"deny-all","levle":"allow-all"}]}`, `unknown field "levle"`},
		{"unknown top-level field", `{"version":1,"services":[],"extra":true}`, `unknown field "extra"`},
		{"unknown rule field", `{"version":1,"services":[{"name":"x","target":"https://x.test","level":"deny-all","allow":[{"path":"/","method":"GET"}]}]}`, `unknown field "method"`},
		{"newer version", `{"version":2,"services":[` + svc + `]}`, "unsupported version 2 (this engine reads version 1)"},
		{"no version", `{"services":[` + svc + `]}`, "unsupported version 0"},
		{"duplicate key", `{"version":1,"services":[{"name":"x","target":"https://x.test","level":"deny-all","level":"allow-all"}]}`, `duplicate key "level"`},
		{"trailing data", `{"version":1,"services":[]} {}`, "top-level value"},
		{"not an object", `[]`, "cannot unmarshal array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.doc))
			require.ErrorContains(t, err, tc.want)
			// json.Unmarshal is as strict, so a manifest embedding a
			// policy reads it the same way.
			var p policy.Policy
			require.ErrorContains(t, json.Unmarshal([]byte(tc.doc), &p), tc.want)
		})
	}
}

func TestCompileRejects(t *testing.T) {
	base := func(edit func(s *policy.Service)) policy.Policy {
		s := policy.Service{Name: "svc", Target: "https://api.example.test", Level: policy.DenyAll}
		edit(&s)
		return policy.Policy{Version: 1, Services: []policy.Service{s}}
	}
	allowRule := func(r policy.Rule) func(s *policy.Service) {
		return func(s *policy.Service) { s.Allow = append(s.Allow, r) }
	}
	for _, tc := range []struct {
		name string
		p    policy.Policy
		want string
	}{
		{"bad name", base(func(s *policy.Service) { s.Name = "Svc" }), `name "Svc"`},
		{"non-canonical target", base(func(s *policy.Service) { s.Target = "https://API.example.test:443" }), `write "https://api.example.test"`},
		{"target with path", base(func(s *policy.Service) { s.Target = "https://api.example.test/v1" }), "no path"},
		{"ftp target", base(func(s *policy.Service) { s.Target = "ftp://api.example.test" }), "scheme must be http or https"},
		{"bad level", base(func(s *policy.Service) { s.Level = "allow-some" }), `level "allow-some"`},
		{"bad mode", base(func(s *policy.Service) { s.Mode = "audit" }), `unknown mode "audit"`},
		{"bad secret name", base(func(s *policy.Service) { s.Secrets = []string{"token"} }), `secrets[0]: "token"`},
		{"forbidden header", base(func(s *policy.Service) { s.Headers = []string{"Host"} }), `"Host" is set by the host`},
		{"accept-encoding", base(func(s *policy.Service) { s.Headers = []string{"Accept-Encoding"} }), `"Accept-Encoding" is set by the host`},
		{"accept-encoding in a rule", base(allowRule(policy.Rule{Path: "/", Headers: []string{"accept-encoding"}})), `"accept-encoding" is set by the host`},
		{"accept-encoding as a credential", base(func(s *policy.Service) {
			s.Credentials = []policy.Credential{{Header: "Accept-Encoding", Value: "gzip"}}
		}), `"Accept-Encoding" is set by the host`},
		{"credential with unknown secret", base(func(s *policy.Service) {
			s.Credentials = []policy.Credential{{Header: "Authorization", Value: "Bearer ${secret:OTHER}"}}
		}), "secret OTHER is not in the service's secrets"},
		{"malformed placeholder", base(func(s *policy.Service) {
			s.Secrets = []string{"TOKEN"}
			s.Credentials = []policy.Credential{{Header: "Authorization", Value: "Bearer ${secret:TOKEN"}}
		}), "unterminated placeholder"},
		{"unknown placeholder kind", base(func(s *policy.Service) {
			s.Secrets = []string{"TOKEN"}
			s.Credentials = []policy.Credential{{Header: "Authorization", Value: "${env:TOKEN}"}}
		}), "want ${secret:NAME} or ${basic:USER:NAME}"},
		{"missing path", base(allowRule(policy.Rule{Methods: []string{"GET"}})), "path is required"},
		{"relative path", base(allowRule(policy.Rule{Path: "v1/*"})), "must begin with /"},
		{"partial globstar", base(allowRule(policy.Rule{Path: "/v1/a**"})), "** must be a whole segment"},
		{"dot segment pattern", base(allowRule(policy.Rule{Path: "/v1/../admin"})), "dot segments cannot be matched"},
		{"lower-case method", base(allowRule(policy.Rule{Path: "/", Methods: []string{"get"}})), `method "get"`},
		{"TRACE", base(allowRule(policy.Rule{Path: "/", Methods: []string{"TRACE"}})), `method "TRACE"`},
		{"bad regexp", base(allowRule(policy.Rule{Path: "/", Query: []policy.QueryMatch{{Key: "q", Pattern: "("}}})), "pattern"},
		{"bad pointer", base(allowRule(policy.Rule{Path: "/", Body: []policy.BodyMatch{{Pointer: "model"}}})), "not a JSON pointer"},
		{"two body conditions", base(allowRule(policy.Rule{Path: "/", Body: []policy.BodyMatch{{Pointer: "/a", Equals: json.RawMessage(`1`), Pattern: "x"}}})), "at most one of"},
		{"bad graphql operation", base(allowRule(policy.Rule{Path: "/", GraphQL: &policy.GraphQLMatch{Operations: []string{"Query"}}})), `operation "Query"`},
		{"bad rule id", base(allowRule(policy.Rule{ID: "has space", Path: "/"})), `id "has space"`},
		{"limit on deny", base(func(s *policy.Service) { s.Deny = []policy.Rule{{Path: "/", Limit: 3}} }), "a deny rule cannot have a limit"},
		{"identical rules", base(func(s *policy.Service) {
			s.Allow = []policy.Rule{{Path: "/a"}, {Path: "/a"}}
		}), "identical rules derive the same id"},
		{"bad host glob", base(func(s *policy.Service) { s.Hosts = []string{"*.exämple.test"} }), "punycode"},
		{"http host globs with secrets", base(func(s *policy.Service) {
			s.Target, s.Hosts, s.Secrets = "http://127.0.0.1:8080", []string{"*.local.test"}, []string{"TOKEN"}
		}), "cannot span hosts and own secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(tc.p)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "policy: services[0] (")
		})
	}

	t.Run("two services, one target", func(t *testing.T) {
		_, err := policy.New(policy.NewService("a", "https://x.test"), policy.NewService("b", "https://x.test/"))
		require.ErrorContains(t, err, "target https://x.test is already the target of a")
	})
	t.Run("two services, one name", func(t *testing.T) {
		_, err := policy.New(policy.NewService("a", "https://x.test"), policy.NewService("a", "https://y.test"))
		require.ErrorContains(t, err, `name "a" is used twice`)
	})
	t.Run("rule ids unique across services", func(t *testing.T) {
		_, err := policy.New(
			policy.NewService("a", "https://x.test").Allow(policy.On("/").ID("same")),
			policy.NewService("b", "https://y.test").Allow(policy.On("/").ID("same")))
		require.ErrorContains(t, err, `id "same" is already used by a rule of a allow`)
	})
}

// A service spans hosts over http only without secrets; over https, or
// with only its exact target on http, it may own them.
func TestHTTPHostGlobs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		service   *policy.ServiceBuilder
		url       string
		allow     bool
		withCreds bool
	}{
		{"http globs without secrets", policy.NewService("a", "http://127.0.0.1:8080").Hosts("*.local.test").Level(policy.AllowAll),
			"http://x.local.test:8080/", true, false},
		{"https globs with secrets", policy.NewService("a", "https://api.example.test").Hosts("*.example.test").Level(policy.AllowAll).Credential("Authorization", "Bearer ${secret:T}"),
			"https://x.example.test/", true, true},
		{"http target with secrets", policy.NewService("a", "http://127.0.0.1:8080").Level(policy.AllowAll).Credential("Authorization", "Bearer ${secret:T}"),
			"http://127.0.0.1:8080/", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.New(tc.service)
			require.NoError(t, err)
			e, err := policy.Compile(p)
			require.NoError(t, err)
			d := e.Evaluate(&policy.Request{URL: tc.url}, nil)
			require.Equal(t, tc.allow, d.Allow, "%+v", d)
			require.Equal(t, tc.withCreds, len(d.Headers) > 0, "%+v", d)
		})
	}
	_, err := policy.New(policy.NewService("a", "http://127.0.0.1:8080").Hosts("*.local.test").Credential("Authorization", "Bearer ${secret:T}"))
	require.ErrorContains(t, err, "a credential goes over plain http only to the exact target")
}

func TestSetTarget(t *testing.T) {
	p := fixturePolicy(t)
	overridden := p
	require.NoError(t, overridden.SetTarget("anthropic", "http://127.0.0.1:4000/"))
	require.ErrorContains(t, overridden.SetTarget("nope", "http://127.0.0.1:4000"), `"nope": no such service`)
	require.ErrorContains(t, overridden.SetTarget("openai", "http://127.0.0.1:4000/v1"), "no path")

	e, err := policy.Compile(overridden)
	require.NoError(t, err)
	d := e.Evaluate(&policy.Request{Method: "POST", URL: "http://127.0.0.1:4000/v1/messages"}, nil)
	require.True(t, d.Allow)
	require.Equal(t, "anthropic", d.Service)
	// The agent's code is unchanged: what it sends to the declared target
	// is decided and sent at the new one, rules and all.
	d = e.Evaluate(&policy.Request{Method: "POST", URL: "HTTPS://api.anthropic.com./v1/x/../messages?a=1"}, nil)
	require.True(t, d.Allow)
	require.Equal(t, "anthropic", d.Service)
	require.Equal(t, "http://127.0.0.1:4000/v1/messages?a=1", d.URL)
	require.True(t, e.Owns("http://127.0.0.1:4000", "ANTHROPIC_API_KEY"))
	require.False(t, e.Owns("https://api.anthropic.com", "ANTHROPIC_API_KEY"), "the credential follows the target, not the old origin")
	// Overriding twice keeps the origin the policy was written with.
	twice := overridden
	require.NoError(t, twice.SetTarget("anthropic", "http://127.0.0.1:5000"))
	e2, err := policy.Compile(twice)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:5000/v1/messages", e2.Evaluate(&policy.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages"}, nil).URL)
	// A service that really lives at the old origin keeps it.
	both := overridden
	both.Services = append(both.Services, policy.Service{Name: "old", Target: "https://api.anthropic.com", Level: policy.DenyAll})
	e3, err := policy.Compile(both)
	require.NoError(t, err)
	d = e3.Evaluate(&policy.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages"}, nil)
	require.Equal(t, "old", d.Service)
	require.False(t, d.Allow)

	// The policy the override was made from is unchanged.
	orig, err := policy.Compile(p)
	require.NoError(t, err)
	d = orig.Evaluate(&policy.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages"}, nil)
	require.True(t, d.Allow)
}

func TestBuilder(t *testing.T) {
	p, err := policy.New(
		policy.NewService("weather", "HTTPS://API.Weather.Test:443/").
			Level(policy.AllowRead).
			Credential("Authorization", "Bearer ${secret:WEATHER_KEY}").
			Allow(policy.On("/v1/alerts", "POST").JSON("/level", "info", "warn").JSON("/count", 1).Limit(5)),
	)
	require.NoError(t, err)
	require.Equal(t, policy.Version, p.Version)
	require.Len(t, p.Services, 1)
	s := p.Services[0]
	require.Equal(t, "https://api.weather.test", s.Target)
	require.Equal(t, []string{"WEATHER_KEY"}, s.Secrets)
	require.Contains(t, s.Headers, "content-type")
	require.Equal(t, []policy.Credential{{Header: "Authorization", Value: "Bearer ${secret:WEATHER_KEY}"}}, s.Credentials)
	require.Equal(t, []policy.BodyMatch{
		{Pointer: "/level", OneOf: []json.RawMessage{json.RawMessage(`"info"`), json.RawMessage(`"warn"`)}},
		{Pointer: "/count", Equals: json.RawMessage(`1`)},
	}, s.Allow[0].Body)

	e, err := policy.Compile(p)
	require.NoError(t, err)
	req := policy.Request{Method: "POST", URL: "https://api.weather.test/v1/alerts", Body: []byte(`{"level":"warn","count":1.0}`)}
	d := e.Evaluate(&req, nil)
	require.True(t, d.Allow, "%+v", d)
	require.Equal(t, policy.ReasonAllowRule, d.Reason)
	require.Equal(t, d.Rule, d.Counter)

	for name, b := range map[string]*policy.ServiceBuilder{
		"bad target":      policy.NewService("x", "not a url"),
		"bad placeholder": policy.NewService("x", "https://x.test").Credential("Authorization", "${secret:lower}"),
		"bad rule":        policy.NewService("x", "https://x.test").Allow(policy.On("/").GraphQLNames("A")),
		"bad JSON value":  policy.NewService("x", "https://x.test").Allow(policy.On("/").JSON("/a", func() {})),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policy.New(b)
			require.Error(t, err)
			_, err = b.Build()
			require.Error(t, err)
		})
	}
}

func TestRuleIDsAreStable(t *testing.T) {
	rules := []*policy.RuleBuilder{
		policy.On("/v1/a/*", "GET"),
		policy.On("/v1/b/*", "GET"),
	}
	build := func(order ...int) *policy.Engine {
		s := policy.NewService("svc", "https://api.example.test")
		for _, i := range order {
			s.Allow(rules[i])
		}
		p, err := policy.New(s)
		require.NoError(t, err)
		e, err := policy.Compile(p)
		require.NoError(t, err)
		return e
	}
	ruleFor := func(e *policy.Engine, url string) string {
		d := e.Evaluate(&policy.Request{URL: url}, nil)
		require.True(t, d.Allow)
		return d.Rule
	}
	e1, e2 := build(0, 1), build(1, 0)
	idA := ruleFor(e1, "https://api.example.test/v1/a/1")
	require.Regexp(t, `^allow-[0-9a-f]{12}$`, idA)
	require.Equal(t, idA, ruleFor(build(0, 1), "https://api.example.test/v1/a/1"), "same policy, same id")
	require.Equal(t, idA, ruleFor(e2, "https://api.example.test/v1/a/1"), "reordering keeps ids")
	require.NotEqual(t, idA, ruleFor(e1, "https://api.example.test/v1/b/1"), "different rules, different ids")

	changed, err := policy.New(policy.NewService("svc", "https://api.example.test").Allow(policy.On("/v1/a/*", "GET", "HEAD")))
	require.NoError(t, err)
	ec, err := policy.Compile(changed)
	require.NoError(t, err)
	require.NotEqual(t, idA, ruleFor(ec, "https://api.example.test/v1/a/1"), "a changed rule gets a new id (and a new counter)")

	other, err := policy.New(policy.NewService("other", "https://api.example.test").Allow(policy.On("/v1/a/*", "GET")))
	require.NoError(t, err)
	eo, err := policy.Compile(other)
	require.NoError(t, err)
	require.NotEqual(t, idA, ruleFor(eo, "https://api.example.test/v1/a/1"), "the same rule in another service is another counter")
}

func TestCanonicalizeAPI(t *testing.T) {
	c, err := policy.Canonicalize("HTTPS://Example.TEST.:443/a/./b/../c//d?%7e=1#frag")
	require.NoError(t, err)
	require.Equal(t, "https://example.test/a/c/d?~=1", c)
	require.True(t, policy.IsCanonical(c))
	require.False(t, policy.IsCanonical("https://example.test/a/../c"))
	require.False(t, policy.IsCanonical("https://example.test"))
	require.True(t, policy.IsCanonical("https://gitlab.example.test/api/v4/projects/a%2Fb"),
		"%2F is canonical; the engine decides whether a service accepts it")

	_, err = policy.Canonicalize("https://user@example.test/")
	require.ErrorContains(t, err, "userinfo")
	require.True(t, strings.HasPrefix(err.Error(), `policy: canonicalize "https://user@example.test/": `))
}
