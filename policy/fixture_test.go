package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

// fixturePolicy is the presets plus hand-written services that exercise
// what the presets do not: deny rules on paths, JSON body rules, opaque
// encoded slashes, IP targets, services that span hosts and query rules.
func fixturePolicy(t testing.TB) policy.Policy {
	t.Helper()
	p, err := policy.New(
		policy.Anthropic(),
		policy.OpenAI(),
		policy.GitHub(),
		policy.GitHubGit(),
		policy.NewService("shop", "https://api.shop.test").
			Level(policy.AllowRead).
			CaseInsensitivePaths().
			Credential("Authorization", "Bearer ${secret:SHOP_TOKEN}").
			Deny(
				policy.On("/admin/**").ID("shop-admin"),
				policy.On("/v1/orders/*", "DELETE").ID("shop-order-delete"),
			).
			Allow(
				policy.On("/v1/orders", "POST").JSON("/kind", "book", "pen").JSONAbsent("/gift").ID("shop-order"),
				policy.On("/v1/orders/*/cancel", "POST").Headers("X-HTTP-Method-Override").ID("shop-cancel"),
				policy.On("/v1/search", "GET").JSON("/q").ID("shop-search-body"),
			),
		policy.NewService("gitlab", "https://gitlab.example.test").
			OpaqueEncodedSlash().
			Allow(
				policy.On("/api/v4/projects/*", "GET").ID("gitlab-project"),
				policy.On("/api/v4/projects/*/repository/files/*", "GET").ID("gitlab-file"),
			),
		policy.NewService("fake", "http://127.0.0.1:8080").Level(policy.AllowAll),
		policy.NewService("fake6", "http://[::1]:9090").Level(policy.AllowAll),
		policy.NewService("storage", "https://storage.example.test").
			Hosts("*.storage.example.test").
			Credential("Authorization", "Bearer ${secret:STORAGE_TOKEN}").
			Allow(policy.On("/**", "GET").Host("*.storage.example.test").ID("storage-read")),
		// Query constraints in allow rules (every reading of the query must
		// pass) and in deny rules (one reading is enough).
		policy.NewService("search", "https://search.example.test").
			Allow(
				policy.On("/search", "GET").Query("q", "foo").ID("search-q"),
				policy.On("/items", "GET").QueryPattern("id", "[0-9]+").ID("search-items"),
				policy.On("/list", "GET").QueryAbsent("admin").ID("search-list"),
			),
		policy.NewService("reports", "https://reports.example.test").
			Level(policy.AllowAll).
			Deny(
				policy.On("/export").Query("format", "csv").ID("reports-no-csv"),
				policy.On("/**").Query("debug").ID("reports-no-debug"),
				policy.On("/safe").QueryAbsent("token").ID("reports-need-token"),
			),
	)
	require.NoError(t, err)
	return p
}

func fixture(t testing.TB) *policy.Engine {
	t.Helper()
	e, err := policy.Compile(fixturePolicy(t))
	require.NoError(t, err)
	return e
}

// gql is a GraphQL request body holding one document.
func gql(doc string) string {
	b, _ := json.Marshal(map[string]string{"query": doc})
	return string(b)
}
