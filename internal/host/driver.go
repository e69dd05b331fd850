package host

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/damperdev/damper/internal/wire"
)

// Guest is a module instance as the driver sees it: the three task exports
// of docs/abi.md, their inputs encoded and their outputs decoded. An error
// means the instance is unusable (a trap, or output outside the ABI).
// Cancel returns a done output or an error, never a batch.
type Guest interface {
	Start(ctx context.Context, s wire.Start) (wire.Output, error)
	Resume(ctx context.Context, r *wire.Resume) (wire.Output, error)
	Cancel(ctx context.Context, task string) (wire.Output, error)
}

// RunTask drives t to its end on g: start with payload, then perform each
// batch concurrently and resume with every result, until the guest says
// done. When ctx ends first, the task is canceled in the guest
// (damper_cancel) and its final output returned. Export calls are never
// interrupted by ctx: a call cut short would leave the instance unusable
// for every other task in it. What t holds is released on return.
func (c *Core) RunTask(ctx context.Context, g Guest, t *Task, payload []byte) (wire.Output, error) {
	defer t.Release()
	callCtx := context.WithoutCancel(ctx)
	out, err := g.Start(callCtx, t.Start(payload))
	if err == nil && t.OnStarted != nil {
		t.OnStarted(&out)
	}
	for err == nil && !out.Done {
		if c.onBatch != nil {
			c.onBatch(t, out.Effects)
		}
		results := c.PerformBatch(ctx, t, out.Effects)
		if ctx.Err() != nil {
			t.releaseBodies()
			out, err = g.Cancel(callCtx, t.ID)
			break
		}
		out, err = g.Resume(callCtx, &wire.Resume{Task: t.ID, Results: results})
		// The guest has the bodies now: they are its memory, not the host's.
		t.releaseBodies()
	}
	if err == nil && out.Done {
		t.scrubOutput(&out)
	}
	return out, err
}

// scrubOutput scrubs the agent's secrets from a task's result and error,
// the last things a host hands out. Responses are scrubbed as they come
// in, but not all the ways a secret can arrive: a service that echoes its
// own credential split over several pieces of a stream (a model's text
// deltas) hands the guest the whole of it, which the guest may put in its
// result (docs/redteam.md, round 2).
func (t *Task) scrubOutput(out *wire.Output) {
	s := t.secrets
	if !s.any() {
		return
	}
	if len(out.Result) > 0 {
		if r := s.scrub.Bytes(out.Result); !bytes.Equal(r, out.Result) {
			out.Result = r
			if !json.Valid(r) {
				out.Result = nil
				out.Error = &wire.Error{Type: "internal", Status: 500,
					Message: "the run's result held a secret of the agent, and was not JSON once it was scrubbed"}
			}
		}
	}
	if e := out.Error; e != nil {
		e.Message = s.scrub.String(e.Message)
		if len(e.Details) > 0 {
			if d := s.scrub.Bytes(e.Details); !bytes.Equal(d, e.Details) {
				e.Details = d
				if !json.Valid(d) {
					e.Details = nil
				}
			}
		}
	}
}
