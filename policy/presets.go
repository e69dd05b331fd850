package policy

import (
	"fmt"
	"strings"
)

// Anthropic is the Anthropic API at level AllowAll, with the key sent as
// x-api-key from the secret ANTHROPIC_API_KEY.
func Anthropic() *ServiceBuilder {
	return NewService("anthropic", "https://api.anthropic.com").
		Level(AllowAll).
		AddHeaders("anthropic-version", "anthropic-beta").
		Credential("x-api-key", "${secret:ANTHROPIC_API_KEY}")
}

// OpenAI is the OpenAI API at level AllowAll, with the key sent as a Bearer
// token from the secret OPENAI_API_KEY.
func OpenAI() *ServiceBuilder {
	return NewService("openai", "https://api.openai.com").
		Level(AllowAll).
		AddHeaders("openai-organization", "openai-project", "openai-beta").
		Credential("Authorization", "Bearer ${secret:OPENAI_API_KEY}")
}

// GitHub is the GitHub REST and GraphQL API, read-only: GET, HEAD and
// OPTIONS, and GraphQL documents made only of queries. Owners and
// repositories are matched without case. The token comes from GITHUB_TOKEN.
func GitHub() *ServiceBuilder {
	return NewService("github", "https://api.github.com").
		Level(AllowRead).
		CaseInsensitivePaths().
		AddHeaders("x-github-api-version").
		Credential("Authorization", "Bearer ${secret:GITHUB_TOKEN}").
		Deny(
			// A GraphQL server may run a document sent in the URL.
			On("/graphql/**", "GET", "HEAD").ID("github-graphql-get"),
		).
		Allow(
			On("/graphql", "POST").GraphQL("query").ID("github-graphql-query"),
		)
}

// GitHubGit is git's smart HTTP protocol on github.com, read-only: clone and
// fetch (git-upload-pack), never push (git-receive-pack). git's credential
// is HTTP Basic with the user x-access-token and the token GITHUB_TOKEN.
func GitHubGit() *ServiceBuilder {
	return NewService("github-git", "https://github.com").
		Level(DenyAll).
		CaseInsensitivePaths().
		Headers("accept", "content-type", "content-encoding", "git-protocol", "user-agent").
		Credential("Authorization", "${basic:x-access-token:GITHUB_TOKEN}").
		Deny(
			On("/**/git-receive-pack").ID("github-git-receive-pack"),
			On("/**/info/refs").Query("service", "git-receive-pack").ID("github-git-receive-pack-refs"),
		).
		Allow(
			On("/*/*/info/refs", "GET").Query("service", "git-upload-pack").ID("github-git-info-refs"),
			On("/*/*/git-upload-pack", "POST").ID("github-git-upload-pack"),
		)
}

// OTLP is an OpenTelemetry collector's OTLP/HTTP traces endpoint, the
// service named "otel" that a run's span export is decided by
// (docs/events.md): POST /v1/traces, nothing else. The hosts point its
// target at the collector they export to (OTEL_EXPORTER_OTLP_ENDPOINT), so
// the placeholder target here never matters; a collector that wants a
// credential gets one with Credential (and its secret).
func OTLP() *ServiceBuilder {
	return NewService("otel", "http://127.0.0.1:4318").
		Level(DenyAll).
		Allow(On("/v1/traces", "POST").ID("otel-traces"))
}

// Preset returns the services of a preset named "NAME[:LEVEL]", as the CLI
// spells it: "anthropic" and "openai" (LEVEL one of allow-read, allow-all,
// deny-all; allow-all by default) and "github" (LEVEL read-only, the
// default), which is two services, GitHub and GitHubGit.
func Preset(spec string) ([]*ServiceBuilder, error) {
	name, level, _ := strings.Cut(spec, ":")
	switch name {
	case "anthropic", "openai":
		b := Anthropic()
		if name == "openai" {
			b = OpenAI()
		}
		switch l := Level(level); l {
		case "":
		case AllowRead, AllowAll, DenyAll:
			b.Level(l)
		default:
			return nil, fmt.Errorf("policy: preset %s: unknown level %q (want allow-read, allow-all or deny-all)", name, level)
		}
		return []*ServiceBuilder{b}, nil
	case "github":
		if level != "" && level != "read-only" {
			return nil, fmt.Errorf("policy: preset github: unknown level %q (want read-only)", level)
		}
		return []*ServiceBuilder{GitHub(), GitHubGit()}, nil
	}
	return nil, fmt.Errorf("policy: unknown preset %q (want anthropic, openai or github)", name)
}
