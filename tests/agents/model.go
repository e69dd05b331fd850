package agents

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/model"
	_ "github.com/damperdev/damper/runtime/model/anthropic" // registers "anthropic"
	"github.com/damperdev/damper/runtime/model/openai"      // registers "openai"
	"github.com/damperdev/damper/runtime/model/workersai"
)

// CompatOrigin and CompatPrefix are where the provider "compat" (an
// OpenAI-compatible service of probe.model's policy, service "compat")
// is declared; tests point the service at a fake with
// DAMPER_TARGETS=compat=http://127.0.0.1:PORT. Its key is the secret
// COMPAT_API_KEY.
const (
	CompatOrigin  = "http://127.0.0.1:11"
	CompatAccount = "acc"
	CompatPrefix  = "/client/v4/accounts/" + CompatAccount + "/ai/v1"
)

// ModelPolicy is probe.model's: the Anthropic and OpenAI presets, and the
// OpenAI-compatible service "compat".
var ModelPolicy = must(policy.New(
	policy.Anthropic(),
	policy.OpenAI(),
	// Workers AI's REST fallback has the compat fake's path: tests point
	// the service at it (DAMPER_TARGETS=workers-ai=...), with the key as
	// CLOUDFLARE_API_TOKEN.
	workersai.Service(CompatAccount),
	policy.NewService("compat", CompatOrigin).
		Level(policy.DenyAll).
		Credential("Authorization", "Bearer ${secret:COMPAT_API_KEY}").
		Allow(policy.On(CompatPrefix+"/chat/completions", "POST").ID("compat-chat")),
))

func init() {
	model.Register("compat", openai.Compatible("compat", CompatOrigin+CompatPrefix))
	workersai.Register(CompatAccount)
	agent.Register("probe.model", modelTurn, agent.WithPolicy(ModelPolicy))
	agent.Register("probe.model.nopolicy", modelTurn)
}

// ModelIn asks for one turn of Model ("provider/model") with Request (a
// model.Request as JSON). MaxRetries, when set, replaces the default
// retry count (-1: none).
type ModelIn struct {
	Model      string          `json:"model"`
	Request    json.RawMessage `json:"request"`
	MaxRetries int             `json:"max_retries,omitempty"`
}

// ModelOut is the turn's response, or its error, and every delta the
// model streamed.
type ModelOut struct {
	Response *model.Response `json:"response,omitempty"`
	Error    *ModelError     `json:"error,omitempty"`
	Deltas   []ModelDelta    `json:"deltas"`
}

// ModelError is a *model.Error as data.
type ModelError struct {
	Kind         string `json:"kind"`
	Provider     string `json:"provider"`
	Status       int    `json:"status"`
	Type         string `json:"type"`
	Message      string `json:"message"`
	RequestID    string `json:"request_id"`
	RetryAfterMs int64  `json:"retry_after_ms"`
	Retryable    bool   `json:"retryable"`
	Text         string `json:"text"` // Error()
}

// ModelDelta is a model.Delta as data.
type ModelDelta struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Text    string `json:"text,omitempty"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	WaitMs  int64  `json:"wait_ms,omitempty"`
	Err     string `json:"err,omitempty"`
}

func modelTurn(ctx *agent.Context, in ModelIn) (ModelOut, error) {
	var req model.Request
	if err := json.Unmarshal(in.Request, &req); err != nil {
		return ModelOut{}, fmt.Errorf("decode the request: %w", err)
	}
	var opts []model.Option
	if in.MaxRetries != 0 {
		p := model.DefaultRetryPolicy
		p.MaxRetries = in.MaxRetries
		opts = append(opts, model.WithRetry(p))
	}
	m, err := model.Open(in.Model, ctx, opts...)
	if err != nil {
		return ModelOut{}, err
	}
	out := ModelOut{Deltas: []ModelDelta{}}
	resp, err := m.Turn(ctx, &req, func(d model.Delta) {
		md := ModelDelta{Type: string(d.Type), Index: d.Index, Text: d.Text, ID: d.ID, Name: d.Name, Attempt: d.Attempt, WaitMs: d.Wait.Milliseconds()}
		if d.Err != nil {
			md.Err = d.Err.Error()
		}
		out.Deltas = append(out.Deltas, md)
	})
	var me *model.Error
	switch {
	case errors.As(err, &me):
		out.Error = &ModelError{Kind: string(me.Kind), Provider: me.Provider, Status: me.Status, Type: me.Type, Message: me.Message,
			RequestID: me.RequestID, RetryAfterMs: me.RetryAfter.Milliseconds(), Retryable: me.Retryable(), Text: me.Error()}
	case err != nil:
		return ModelOut{}, err
	default:
		out.Response = resp
	}
	return out, nil
}
