package policy_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/damperdev/damper/policy"
)

// Agents declare the services they reach, starting from presets or from
// NewService for any other API.
func ExampleNew() {
	p, err := policy.New(
		policy.NewService("weather", "https://api.weather.test").
			Level(policy.AllowRead).
			Credential("Authorization", "Bearer ${secret:WEATHER_KEY}").
			Headers("accept").
			Deny(policy.On("/v1/admin/**").ID("no-admin")).
			Allow(policy.On("/v1/alerts", "POST").JSON("/level", "info", "warn").Limit(10).ID("alerts")),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(p)
	// Output:
	// {
	//   "version": 1,
	//   "services": [
	//     {
	//       "name": "weather",
	//       "target": "https://api.weather.test",
	//       "secrets": [
	//         "WEATHER_KEY"
	//       ],
	//       "level": "allow-read",
	//       "headers": [
	//         "accept"
	//       ],
	//       "credentials": [
	//         {
	//           "header": "Authorization",
	//           "value": "Bearer ${secret:WEATHER_KEY}"
	//         }
	//       ],
	//       "deny": [
	//         {
	//           "id": "no-admin",
	//           "path": "/v1/admin/**"
	//         }
	//       ],
	//       "allow": [
	//         {
	//           "id": "alerts",
	//           "methods": [
	//             "POST"
	//           ],
	//           "path": "/v1/alerts",
	//           "body": [
	//             {
	//               "pointer": "/level",
	//               "oneOf": [
	//                 "info",
	//                 "warn"
	//               ]
	//             }
	//           ],
	//           "limit": 10
	//         }
	//       ]
	//     }
	//   ]
	// }
}

// Compile a policy once, then decide each request: the decision says whether
// to send it, which URL to send (the canonical one) and with which headers.
func ExampleEngine_Evaluate() {
	p, _ := policy.New(policy.GitHub(), policy.GitHubGit())
	engine, _ := policy.Compile(p)

	for _, req := range []policy.Request{
		{Method: "get", URL: "https://API.GitHub.com./repos/octo/hello/../world#readme"},
		{Method: "POST", URL: "https://api.github.com/graphql", Body: []byte(`{"query":"mutation { deleteRepository }"}`)},
		{Method: "POST", URL: "https://github.com/octo/world.git/git-receive-pack"},
	} {
		d := engine.Evaluate(&req, nil)
		fmt.Println(d.Allow, d.Reason, d.Rule, d.Method, d.URL)
		for _, h := range d.Headers {
			fmt.Printf("  %s: %s\n", h.Name, h.Value)
		}
	}
	// Output:
	// true allow-level  GET https://api.github.com/repos/octo/world
	//   Authorization: Bearer ${secret:GITHUB_TOKEN}
	// false deny-level  POST https://api.github.com/graphql
	// false deny-rule github-git-receive-pack POST https://github.com/octo/world.git/git-receive-pack
}

// A redirect is a new request: resolve its Location, then decide it.
func ExampleResolveReference() {
	p, _ := policy.New(policy.GitHub())
	engine, _ := policy.Compile(p)
	for _, loc := range []string{"/repos/octo/moved", "https://evil.test/collect", "https:evil.test"} {
		next, err := policy.ResolveReference("https://api.github.com/repos/octo/hello", loc)
		if err != nil {
			fmt.Println(err)
			continue
		}
		d := engine.Evaluate(&policy.Request{URL: next}, nil)
		fmt.Println(next, d.Allow, d.Reason)
	}
	// Output:
	// https://api.github.com/repos/octo/moved true allow-level
	// https://evil.test/collect false no-service
	// policy: resolve "https:evil.test" against https://api.github.com/repos/octo/hello: scheme must be http or https followed by //
}
