package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/damperdev/damper/internal/wire"
)

// runTask drives one task to its end: start, then perform each batch
// concurrently and resume with every result, until the guest says done.
// When ctx ends first, the task is canceled in the guest (damper_cancel)
// and its final output returned. Handles the task holds are released on
// return. A trap is returned as *trapError.
func (h *Host) runTask(ctx context.Context, mi *moduleInstance, t *task, payload []byte) (wire.Output, error) {
	defer t.release()
	// Export calls are never interrupted by ctx: a call cut short would
	// leave the instance unusable for every other task in it.
	callCtx := context.WithoutCancel(ctx)
	out, err := mi.start(callCtx, wire.Start{
		Task:     t.id,
		Kind:     wire.KindRun,
		Agent:    t.agent,
		Instance: t.instance,
		Run:      t.run,
		Payload:  payload,
		Targets:  h.targets,
	})
	for err == nil && !out.Done {
		if h.cfg.onBatch != nil {
			h.cfg.onBatch(t.agent, t.instance, out.Effects)
		}
		results := h.perf.performBatch(ctx, t, out.Effects)
		if ctx.Err() != nil {
			out, err = mi.cancel(callCtx, t.id)
			if err == nil && !out.Done {
				err = mi.breakWith(fmt.Errorf("task %s: cancel returned a batch", t.id))
			}
			break
		}
		out, err = mi.resume(callCtx, wire.Resume{Task: t.id, Results: results})
	}
	return out, err
}

// isTrap reports whether err means the module instance is unusable.
func isTrap(err error) bool {
	var te *trapError
	return errors.As(err, &te)
}
