// Package instance gives the packages that extend damper's runtime (the
// sandbox kinds, the harness) what belongs to a run's agent instance: who
// it is, and its database under the guest-owned schema. Agent code uses
// runtime/agent, whose State lives in the same database.
//
// The tables such a package uses are created by the runtime's numbered
// migrations (runtime/internal/store), never by the package itself, so the
// schema has one history.
package instance

import (
	"context"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/store"
)

// Key names ctx's agent instance as "agent/id"; false when ctx is not a
// run's.
func Key(ctx context.Context) (string, bool) {
	t := sched.FromContext(ctx)
	if t == nil {
		return "", false
	}
	return t.Start().Agent + "/" + t.Start().Instance, true
}

// Exec runs stmts as one atomic batch (one sql effect) against the
// database of ctx's agent instance, once its schema is current, and
// returns one result per statement. A failure the host reports is an
// *abi.EffectError of type sql_error; the batch then changed nothing.
//
// Call it from the run's goroutines (the handler's, or its Group's).
func Exec(ctx context.Context, stmts ...wire.Statement) ([]wire.StatementResult, error) {
	return store.Exec(ctx, stmts...)
}

// OnForget makes f run whenever the module instance forgets what it keeps
// of agent instances in memory: agenttest.Restart, and agenttest's switch
// to another Host's storage. A package that caches an instance's stored
// data drops it there, as a new module instance would not have it. On the
// hosts a module instance never forgets; it is dropped whole.
func OnForget(f func()) { store.OnForget(f) }

// HostModel is the default model the host names for ctx's run
// ("provider/model", from DAMPER_MODEL or damper run --model), or "".
func HostModel(ctx context.Context) string {
	if t := sched.FromContext(ctx); t != nil {
		return t.Start().Model
	}
	return ""
}

// HostSandbox is the sandbox kind the host asks ctx's run to use instead
// of its agent's choice (DAMPER_SANDBOX, damper run --sandbox), or "".
func HostSandbox(ctx context.Context) string {
	if t := sched.FromContext(ctx); t != nil {
		return t.Start().Sandbox
	}
	return ""
}

// Perform issues one effect of ctx's run, of any type, with args (encoded
// as JSON) and waits for its result, decoded into value unless value is
// nil. A failure the host reports is an *EffectError; a type the host
// does not perform is one of type "unknown_effect". The remote sandbox
// kinds reach their hosts this way.
//
// Call it from the run's goroutines (the handler's, or its Group's).
func Perform(ctx context.Context, effect string, args, value any) error {
	return sched.Perform(ctx, effect, args, value)
}

// EffectError is an effect's failure as the host reported it: Type is a
// wire error type (unknown_effect, canceled, ...).
type EffectError = sched.EffectError
