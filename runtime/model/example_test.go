//go:build !wasip1

package model_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/modeltest"
)

func init() {
	// A scripted stand-in for a real model, registered as "test/greeter".
	modeltest.Register("greeter", func(req *model.Request) (*model.Response, error) {
		r := modeltest.Text("Hello, " + req.Messages[len(req.Messages)-1].Text() + "!")
		r.Usage = model.Usage{InputTokens: 12, OutputTokens: 4}
		return r, nil
	})
	agent.Register("example.greet", func(ctx *agent.Context, name string) (string, error) {
		// The model's name would come from configuration: "anthropic/…",
		// "openai/…" with their provider packages imported.
		m, err := model.Open("test/greeter", ctx)
		if err != nil {
			return "", err
		}
		var streamed string
		resp, err := m.Turn(ctx, &model.Request{
			System:   "Greet the user.",
			Messages: []model.Message{model.UserText(name)},
		}, func(d model.Delta) {
			if d.Type == model.DeltaText {
				streamed += d.Text
			}
		})
		if err != nil {
			return "", err
		}
		var total model.Usage
		total.Add(resp.Usage)
		return fmt.Sprintf("%s (streamed %q, %s, %d tokens in)", resp.Message.Text(), streamed, resp.StopReason, total.PromptTokens()), nil
	})
}

func ExampleOpen() {
	h := agenttest.New()
	defer h.Close()
	out, err := h.Run(context.Background(), "example.greet", "demo", "Ada")
	fmt.Println(string(out), err)
	// Output: "Hello, Ada! (streamed \"Hello, Ada!\", end_turn, 12 tokens in)" <nil>
}

func ExamplePriceOf() {
	p, _ := model.PriceOf("anthropic/claude-sonnet-4-5-20250929")
	u := model.Usage{InputTokens: 2_000, OutputTokens: 500, CacheReadTokens: 10_000}
	fmt.Printf("$%.4f\n", p.Cost(u))
	// A model the table lacks, or another price, set by the agent's author:
	model.SetPrice("workersai/@cf/meta/llama-3.3-70b-instruct-fp8-fast", model.Price{Input: 0.29, Output: 2.25})
	p, ok := model.PriceOf("workersai/@cf/meta/llama-3.3-70b-instruct-fp8-fast")
	fmt.Println(p.Output, ok)
	// Output:
	// $0.0165
	// 2.25 true
}

func ExampleError() {
	var err error = &model.Error{Kind: model.KindContextOverflow, Provider: "anthropic", Status: 400,
		Type: "invalid_request_error", Message: "prompt is too long: 210000 tokens > 200000 maximum"}
	var me *model.Error
	if errors.As(err, &me) {
		switch {
		case me.Kind == model.KindContextOverflow:
			fmt.Println("compact the conversation, then try again")
		case me.Retryable():
			fmt.Println("retried already; try later")
		}
	}
	// Output: compact the conversation, then try again
}
