package agents

import (
	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/empty" // the kind probe.sandbox serves
)

// SandboxLimits are the limits of probe.sandbox's empty sandbox: small,
// so that the conformance suite reaches them quickly.
var SandboxLimits = sandbox.Limits{MaxFileSize: 64 << 10, MaxTotalSize: 256 << 10, MaxFiles: 1000}

func init() {
	agent.Register("probe.sandbox", sandboxProbe)
}

// sandboxProbe performs one operation of the sandbox surface on the
// instance's empty sandbox, so that the conformance suite
// (sandbox/sandboxtest) runs inside a real module, one run per operation.
func sandboxProbe(ctx *agent.Context, req sandboxop.Request) (sandboxop.Response, error) {
	sb, err := sandbox.Open(ctx, sandbox.Spec{Kind: sandbox.KindEmpty, Limits: SandboxLimits})
	if err != nil {
		return sandboxop.Response{Error: sandboxop.EncodeError(err)}, nil
	}
	return sandboxop.Serve(ctx, sb, req), nil
}
