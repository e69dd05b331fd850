// Package container links the container kind of sandbox into a module: a
// container per agent instance running sandboxd, whose every outbound
// HTTP and HTTPS request passes the agent's policy.
//
//	import _ "github.com/damperdev/damper/sandbox/container"
//
// On Cloudflare Workers it is a Cloudflare Container of the agent
// instance's Durable Object, built from build/container/Dockerfile; on the
// local host the same sandboxd runs as a child process per agent instance,
// in its own directory under the data directory. Either way the files
// persist across runs, and the container's egress is handed to the
// module as a task its agent's policy decides: an allowed request is sent
// by the host with credentials substituted, a denied one is answered 403.
// Neither the container's environment nor its files ever hold a secret.
//
// Every operation is a "container" effect of the run, performed by the
// host (docs/sandbox.md).
package container

import (
	"context"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/internal/remote"
)

func init() {
	sandbox.RegisterKind(sandbox.KindContainer, func(ctx context.Context, _ sandbox.Spec) (sandbox.Sandbox, error) {
		return remote.Open(ctx, sandbox.KindContainer, remote.EffectContainer,
			"this host does not perform container effects (the local host and the Worker with a [[containers]] binding do)")
	})
}
