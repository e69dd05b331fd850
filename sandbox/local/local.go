// Package local links the local kind of sandbox into a module: the local
// host's own file system and shell, for CI runners that isolate already.
//
//	import _ "github.com/damperdev/damper/sandbox/local"
//
// It is NOT a security boundary. Commands run as the user that runs
// damper, on the machine's files, with the machine's network: a command
// can read anything that user can, and its requests do not pass the
// agent's policy. Only the FS surface refuses paths outside the working
// directory (damper run's directory by default); the shell does not.
// Commands get the host's environment through an allowlist (PATH, HOME,
// the locale, TMPDIR, …; never a secret) plus what Cmd.Env sets, run in
// a process group of their own that is killed whole at the timeout (exit
// 124, the output so far kept) and when they end.
//
// Every operation is a "sandbox" effect that only the local host performs:
// on Cloudflare Workers sandbox.Open fails with sandbox.ErrUnavailable,
// saying why.
package local

import (
	"context"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/internal/remote"
)

func init() {
	sandbox.RegisterKind(sandbox.KindLocal, func(ctx context.Context, _ sandbox.Spec) (sandbox.Sandbox, error) {
		return remote.Open(ctx, sandbox.KindLocal, remote.EffectLocal,
			"the local kind is the local host's own file system and shell (damper run, damper serve); "+
				"this host does not offer it (on Cloudflare Workers, use sandbox.Container() or sandbox.Empty())")
	})
}
