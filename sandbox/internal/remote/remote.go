// Package remote is the guest side of the sandbox kinds whose files and
// shell are the host's (local) or a container's (container): every
// operation is one effect of the run, its request and response the
// shapes of internal/sandboxop, performed by the host.
package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/sandbox"
)

// Effects the kinds issue; their args are a sandboxop.Request, their
// value a sandboxop.Response.
const (
	EffectLocal     = "sandbox"
	EffectContainer = "container"
)

// dirs caches each agent instance's working directory per kind: it is
// asked once per module instance.
var dirs sync.Map // "kind agent/id" -> string

// Open opens ctx's agent instance's sandbox of kind through effect.
// unavailable says why a host that does not perform effect cannot offer
// the kind.
func Open(ctx context.Context, kind sandbox.Kind, effect, unavailable string) (sandbox.Sandbox, error) {
	key, ok := instance.Key(ctx)
	if !ok {
		return nil, fmt.Errorf("the %s kind is opened in a run", kind)
	}
	send := func(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
		var r sandboxop.Response
		if err := instance.Perform(ctx, effect, req, &r); err != nil {
			var ee *instance.EffectError
			if errors.As(err, &ee) && ee.Type == wire.ErrUnknownEffect {
				return r, fmt.Errorf("%w: %s", sandbox.ErrUnavailable, unavailable)
			}
			return r, fmt.Errorf("%s sandbox: %w", kind, err)
		}
		return r, nil
	}
	ck := string(kind) + " " + key
	if d, ok := dirs.Load(ck); ok {
		return sandboxop.Client(kind, d.(string), send), nil
	}
	r, err := send(ctx, sandboxop.Request{Op: sandboxop.OpOpen})
	if err == nil {
		err = r.Error.Err()
	}
	if err != nil {
		return nil, err
	}
	dirs.Store(ck, r.Dir)
	return sandboxop.Client(kind, r.Dir, send), nil
}
