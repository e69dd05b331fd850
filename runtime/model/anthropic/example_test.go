//go:build !wasip1

package anthropic_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	_ "github.com/damperdev/damper/runtime/model/anthropic"
)

func init() {
	// The preset lets the agent reach the Messages API; the host adds the
	// key from the secret ANTHROPIC_API_KEY to each allowed request.
	p, err := policy.New(policy.Anthropic())
	if err != nil {
		panic(err)
	}
	agent.Register("example.claude", func(ctx *agent.Context, question string) (string, error) {
		m, err := model.Open("anthropic/claude-haiku-4-5", ctx)
		if err != nil {
			return "", err
		}
		resp, err := m.Turn(ctx, &model.Request{Messages: []model.Message{model.UserText(question)}, MaxTokens: 100}, nil)
		if err != nil {
			return "", err
		}
		return resp.Message.Text(), nil
	}, agent.WithPolicy(p))
}

// The stream a Messages API answers with, in short.
const stream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_1","model":"claude-haiku-4-5-20251001","usage":{"input_tokens":9,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Four."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}

event: message_stop
data: {"type":"message_stop"}

`

func Example() {
	h := agenttest.New()
	defer h.Close()
	h.Secrets = map[string]string{"ANTHROPIC_API_KEY": "fake-anthropic-key-example"}
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "fake-anthropic-key-example" {
			http.Error(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, stream)
	})
	out, err := h.Run(context.Background(), "example.claude", "demo", "2+2?")
	fmt.Println(string(out), err)
	// Output: "Four." <nil>
}
