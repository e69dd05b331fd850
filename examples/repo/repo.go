// Package repo is an agent that reads the GitHub API under the github
// read-only preset: it can look a repository up, but the policy engine
// refuses to let it star one, and it never sees the token that reaches
// GitHub.
//
// The host injects GITHUB_TOKEN (an environment variable locally, a Worker
// secret on Cloudflare) into requests to api.github.com only. To point the
// agent at another API without rebuilding the module, as the tests do with a
// loopback fake, configure the host with DAMPER_TARGETS=github=http://127.0.0.1:PORT.
package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
)

// Input names a repository. With Star, the agent also tries to star it,
// which the read-only policy denies.
type Input struct {
	Owner string `json:"owner"`
	Repo  string `json:"repo"`
	Star  bool   `json:"star,omitempty"`
}

// Output is what the agent learned, and whether the policy let it star.
type Output struct {
	FullName    string `json:"full_name"`
	Description string `json:"description"`
	Stars       int    `json:"stars"`
	// StarDenied holds the policy's reason when Star was asked for.
	StarDenied string `json:"star_denied,omitempty"`
}

func init() {
	// The preset is data: GET, HEAD and OPTIONS on api.github.com, GraphQL
	// queries only, owners and repositories matched without case, and the
	// token sent as a Bearer credential by the host.
	p, err := policy.New(policy.GitHub())
	if err != nil {
		panic(err)
	}
	agent.Register("repo", lookup, agent.WithPolicy(p))
}

func lookup(ctx *agent.Context, in Input) (Output, error) {
	if in.Owner == "" || in.Repo == "" {
		return Output{}, errors.New("owner and repo are required")
	}
	path := "/repos/" + url.PathEscape(in.Owner) + "/" + url.PathEscape(in.Repo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.github.com"+path, nil)
	if err != nil {
		return Output{}, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := ctx.Fetch(req)
	if err != nil {
		return Output{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Output{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Output{}, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	var r struct {
		FullName    string `json:"full_name"`
		Description string `json:"description"`
		Stars       int    `json:"stargazers_count"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Output{}, fmt.Errorf("GET %s: decode: %w", path, err)
	}
	out := Output{FullName: r.FullName, Description: r.Description, Stars: r.Stars}

	if in.Star {
		star, err := http.NewRequestWithContext(ctx, http.MethodPut, "https://api.github.com/user/starred"+path[len("/repos"):], nil)
		if err != nil {
			return Output{}, err
		}
		resp, err := ctx.Fetch(star)
		var deny *policy.DenyError
		switch {
		case errors.As(err, &deny):
			out.StarDenied = string(deny.Decision.Reason)
		case err != nil:
			return Output{}, err
		default:
			resp.Body.Close()
		}
	}
	return out, nil
}
