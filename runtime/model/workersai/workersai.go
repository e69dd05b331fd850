// Package workersai is Cloudflare Workers AI's chat models as a provider:
// through the Worker's AI binding on Workers, and its REST API elsewhere
// (the local host, or a Worker deployed without the binding), both decided
// by the agent's policy like any request.
//
//	func init() {
//		workersai.Register("ACCOUNT_ID") // the provider "workers-ai"
//	}
//
//	p, err := policy.New(workersai.Service("ACCOUNT_ID"))
//	m, err := model.Open("workers-ai/@cf/meta/llama-3.3-70b-instruct-fp8-fast", ctx)
//
// On Workers, bind the AI service in wrangler.toml ([ai] binding = "AI");
// the REST fallback needs the secret CLOUDFLARE_API_TOKEN, which the host
// adds. Requests are Chat Completions calls of the REST API's
// OpenAI-compatible endpoint; the Worker makes the same call on env.AI and
// answers it in that format.
package workersai

import (
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/openai"
)

// Name is the provider's registered name.
const Name = "workers-ai"

// Origin is the REST API's origin, the one Service declares.
const Origin = "https://api.cloudflare.com"

// prefix is the OpenAI-compatible endpoint's path prefix for account.
func prefix(account string) string { return "/client/v4/accounts/" + account + "/ai/v1" }

// Register makes "workers-ai/MODEL" the Workers AI model MODEL of account
// (its id, for the REST fallback). Call it from an init.
func Register(account string) {
	model.Register(Name, openai.CompatibleBinding(Name, Origin+prefix(account), wire.BindingAI))
}

// Service is the policy service Workers AI needs: POST to the chat
// endpoint of account, with the host adding "Authorization: Bearer" from
// the secret CLOUDFLARE_API_TOKEN (used by the REST fallback only).
func Service(account string) *policy.ServiceBuilder {
	return policy.NewService(Name, Origin).
		Level(policy.DenyAll).
		Credential("Authorization", "Bearer ${secret:CLOUDFLARE_API_TOKEN}").
		Allow(policy.On(prefix(account)+"/chat/completions", "POST").ID("workers-ai-chat"))
}
