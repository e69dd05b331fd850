// Package remote is the guest side of the sandbox kinds whose files and
// shell are the host's (local) or a container's (container): every
// operation is one effect of the run, its request and response the
// shapes of internal/sandboxop, performed by the host.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		return &streaming{Sandbox: sandboxop.Client(kind, d.(string), send), send: send}, nil
	}
	r, err := send(ctx, sandboxop.Request{Op: sandboxop.OpOpen})
	if err == nil {
		err = r.Error.Err()
	}
	if err != nil {
		return nil, err
	}
	dirs.Store(ck, r.Dir)
	return &streaming{Sandbox: sandboxop.Client(kind, r.Dir, send), send: send}, nil
}

// streaming is a remote sandbox whose Exec streams the output to the
// Cmd's writers as the command prints it: the exec answers a stream of
// frames at once, which read effects drain.
type streaming struct {
	sandbox.Sandbox
	send func(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error)
}

// readChunk is how much of the frame stream one read effect asks for.
const readChunk = 256 << 10

func (s *streaming) Exec(ctx context.Context, cmd sandbox.Cmd) (*sandbox.Result, error) {
	if cmd.Stdout == nil && cmd.Stderr == nil {
		return s.Sandbox.Exec(ctx, cmd)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := sandboxop.CmdOf(cmd)
	r, err := s.send(ctx, sandboxop.Request{Op: sandboxop.OpExec, Cmd: &c, Stream: true})
	if err != nil {
		return nil, err
	}
	if err := r.Error.Err(); err != nil {
		return nil, err
	}
	if r.Handle == 0 {
		return nil, fmt.Errorf("%s sandbox: the host answered a streamed exec without a stream", s.Kind())
	}
	eof := false
	defer func() {
		if !eof {
			_ = instance.Perform(ctx, wire.EffectClose, wire.CloseArgs{Handle: r.Handle}, nil)
		}
	}()
	var (
		scan sandboxop.FrameScanner
		werr error
	)
	write := func(w io.Writer, p []byte, what string) {
		if w != nil && len(p) > 0 && werr == nil {
			if _, err := w.Write(p); err != nil {
				werr = fmt.Errorf("exec: stream %s: %w", what, err)
			}
		}
	}
	for !eof {
		var v wire.ReadValue
		if err := instance.Perform(ctx, wire.EffectRead, wire.ReadArgs{Handle: r.Handle, Max: readChunk}, &v); err != nil {
			eof = true // a failed read released the handle
			return nil, fmt.Errorf("%s sandbox: exec: the sandbox went away before the command ended: %w", s.Kind(), err)
		}
		eof = v.EOF
		frames, err := scan.Push(v.Body)
		if err != nil {
			return nil, fmt.Errorf("%s sandbox: exec: %w", s.Kind(), err)
		}
		for _, fr := range frames {
			if fr.End != nil {
				var res *sandbox.Result
				if fr.End.Result != nil {
					res = fr.End.Result.Sandbox()
				}
				if err := fr.End.Error.Err(); err != nil {
					return res, err
				}
				return res, werr
			}
			write(cmd.Stdout, fr.Stdout, "stdout")
			write(cmd.Stderr, fr.Stderr, "stderr")
		}
	}
	return nil, fmt.Errorf("%s sandbox: exec: the sandbox went away before the command ended (its stream stopped)", s.Kind())
}
