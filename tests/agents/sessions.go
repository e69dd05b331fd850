package agents

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/harness"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/modeltest"
)

// SessionsIn asks probe.sessions to hold N sessions in one run, each with
// Turns prompts of Bytes bytes answered by an echo model (test/echo),
// from the first session on.
type SessionsIn struct {
	N     int `json:"n"`
	Turns int `json:"turns"`
	Bytes int `json:"bytes"`
}

// SessionsOut is the guest's Go heap once the sessions are held.
type SessionsOut struct {
	HeapAlloc uint64 `json:"heap_alloc"`
	HeapSys   uint64 `json:"heap_sys"`
	Messages  int    `json:"messages"`
}

func init() {
	// test/echo answers each prompt with its own text: a conversation of
	// known size with no provider.
	modeltest.Register("echo", func(req *model.Request) (*model.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		return modeltest.Text(last.Text()), nil
	})
	agent.Register("probe.sessions", holdSessions)
}

func holdSessions(ctx *agent.Context, in SessionsIn) (SessionsOut, error) {
	h, err := harness.New(ctx, harness.Config{Model: "test/echo"})
	if err != nil {
		return SessionsOut{}, err
	}
	prompt := strings.Repeat("x", in.Bytes)
	var out SessionsOut
	var held []*harness.Session // as an agent holding its sessions would
	for i := range in.N {
		s, err := h.Session("s" + strconv.Itoa(i))
		if err != nil {
			return out, err
		}
		for range in.Turns {
			if _, err := s.Prompt(ctx, prompt); err != nil {
				return out, err
			}
		}
		held = append(held, s)
	}
	for _, s := range held {
		msgs, err := s.Messages(ctx)
		if err != nil {
			return out, err
		}
		out.Messages += len(msgs)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.HeapAlloc, out.HeapSys = ms.HeapAlloc, ms.HeapSys
	return out, nil
}
