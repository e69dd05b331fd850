//go:build !wasip1

package openai_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/openai"
)

func init() {
	// A local vLLM server as the provider "vllm": its service is declared
	// in the policy, as any service the agent reaches.
	model.Register("vllm", openai.Compatible("vllm", "http://127.0.0.1:8000/v1"))
	p, err := policy.New(policy.NewService("vllm", "http://127.0.0.1:8000").
		Level(policy.DenyAll).
		Allow(policy.On("/v1/chat/completions", "POST")))
	if err != nil {
		panic(err)
	}
	agent.Register("example.vllm", func(ctx *agent.Context, q string) (string, error) {
		m, err := model.Open("vllm/Qwen/Qwen3-8B", ctx)
		if err != nil {
			return "", err
		}
		resp, err := m.Turn(ctx, &model.Request{Messages: []model.Message{model.UserText(q)}}, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (%s, %d+%d tokens)", resp.Message.Text(), resp.StopReason, resp.Usage.InputTokens, resp.Usage.OutputTokens), nil
	}, agent.WithPolicy(p))
}

func ExampleCompatible() {
	h := agenttest.New()
	defer h.Close()
	// What a Chat Completions server streams, in short.
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"object":"chat.completion.chunk","model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"role":"assistant","content":"Four"},"finish_reason":null}]}

data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"."},"finish_reason":"stop"}]}

data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2}}

data: [DONE]

`)
	})
	out, err := h.Run(context.Background(), "example.vllm", "demo", "2+2?")
	fmt.Println(string(out), err)
	// Output: "Four. (end_turn, 11+2 tokens)" <nil>
}
