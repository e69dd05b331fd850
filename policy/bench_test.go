package policy_test

import (
	"fmt"
	"testing"

	"github.com/damperdev/damper/policy"
)

// benchEngine compiles a 50-rule policy: 10 deny rules, 40 allow rules, one
// of them a GraphQL body rule.
func benchEngine(b *testing.B) *policy.Engine {
	s := policy.NewService("bench", "https://api.bench.test").
		Level(policy.AllowRead).
		CaseInsensitivePaths().
		Credential("Authorization", "Bearer ${secret:BENCH_TOKEN}")
	for i := 0; i < 10; i++ {
		s.Deny(policy.On(fmt.Sprintf("/admin%d/**", i)))
	}
	for i := 0; i < 39; i++ {
		s.Allow(policy.On(fmt.Sprintf("/v1/res%d/*/items/**", i), "POST", "PUT").Query("mode", "fast", "slow"))
	}
	s.Allow(policy.On("/graphql", "POST").GraphQL("query"))
	p, err := policy.New(s, policy.GitHub())
	if err != nil {
		b.Fatal(err)
	}
	e, err := policy.Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkEvaluate(b *testing.B) {
	e := benchEngine(b)
	headers := []policy.Header{{Name: "Accept", Value: "application/json"}, {Name: "User-Agent", Value: "bench"}}
	cases := []struct {
		name string
		req  policy.Request
	}{
		{"canonical-get", policy.Request{Method: "GET", URL: "https://api.bench.test/v1/res3/42/items/7?mode=fast", Headers: headers}},
		{"last-allow-rule", policy.Request{Method: "PUT", URL: "https://api.bench.test/v1/res38/42/items/7/x?mode=slow", Headers: headers}},
		{"deny-rule", policy.Request{Method: "GET", URL: "https://api.bench.test/admin9/users", Headers: headers}},
		{"level-deny", policy.Request{Method: "DELETE", URL: "https://api.bench.test/v1/res3/42", Headers: headers}},
		{"no-service", policy.Request{Method: "GET", URL: "https://evil.test/x", Headers: headers}},
		{"non-canonical", policy.Request{Method: "get", URL: "HTTPS://API.Bench.Test.:443/v1/./res3/%34%32/../42/items//7?mode=fast#x", Headers: headers}},
		{"graphql-body", policy.Request{Method: "POST", URL: "https://api.bench.test/graphql", Headers: headers,
			Body: []byte(`{"query":"query Viewer { viewer { login repositories(first: 10) { nodes { name } } } }"}`)}},
	}
	var d policy.Decision
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.EvaluateInto(&d, &c.req, nil)
			}
		})
	}
	b.Run("mix", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// Requests that no body matcher reads, as most are.
			e.EvaluateInto(&d, &cases[i%5].req, nil)
			i++
		}
	})
}
