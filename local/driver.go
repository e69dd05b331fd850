package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/wire"
)

// A moduleInstance is the guest that host.RunTask drives.
var _ host.Guest = (*moduleInstance)(nil)

// Start is damper_start.
func (mi *moduleInstance) Start(ctx context.Context, s wire.Start) (wire.Output, error) {
	return mi.task(ctx, mi.fnStart, s.Task, s)
}

// Resume is damper_resume.
func (mi *moduleInstance) Resume(ctx context.Context, r *wire.Resume) (wire.Output, error) {
	return mi.task(ctx, mi.fnResume, r.Task, r)
}

// Cancel is damper_cancel; a guest that answers it with a batch is broken.
func (mi *moduleInstance) Cancel(ctx context.Context, task string) (wire.Output, error) {
	out, err := mi.task(ctx, mi.fnCancel, task, wire.Cancel{Task: task})
	if err == nil && !out.Done {
		return out, mi.breakWith(fmt.Errorf("task %s: cancel returned a batch", task))
	}
	return out, err
}

// isTrap reports whether err means the module instance is unusable.
func isTrap(err error) bool {
	var te *trapError
	return errors.As(err, &te)
}
