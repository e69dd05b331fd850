package sandbox

import (
	"context"
	"time"

	"github.com/damperdev/damper/runtime/event"
)

// observed is a sandbox whose commands are events of the run: shell.exec
// when one starts, shell.exit with its exit code and output when it ends,
// whichever kind runs it. The kinds stay free of events; Open wraps them.
type observed struct{ Sandbox }

func (o observed) Exec(ctx context.Context, cmd Cmd) (*Result, error) {
	began := time.Now()
	// An event that cannot be sent (ctx is not a run's, the run is ending)
	// never fails the command: events report.
	_ = event.Emit(ctx, event.Event{Data: event.ShellExec{Command: cmd.Script, Cwd: cmd.Dir, Sandbox: string(o.Kind())}})
	res, err := o.Sandbox.Exec(ctx, cmd)
	if res != nil {
		_ = event.Emit(ctx, event.Event{Data: event.ShellExit{ExitCode: res.ExitCode, DurationMs: time.Since(began).Milliseconds(),
			Output: res.Stdout + res.Stderr, Truncated: res.Truncated, TimedOut: res.TimedOut}})
	}
	return res, err
}
