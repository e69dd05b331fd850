package agents

import (
	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/container" // probe.sandbox.container's kind
	_ "github.com/damperdev/damper/sandbox/empty"     // the kind probe.sandbox serves
	_ "github.com/damperdev/damper/sandbox/local"     // probe.sandbox.local's kind
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

func init() {
	agent.Register("probe.sandbox.local", func(ctx *agent.Context, req sandboxop.Request) (sandboxop.Response, error) {
		return serveKind(ctx, sandbox.Local(), req), nil
	})
	agent.Register("probe.sandbox.container", func(ctx *agent.Context, req sandboxop.Request) (sandboxop.Response, error) {
		return serveKind(ctx, sandbox.Container(), req), nil
	}, agent.WithPolicy(EgressPolicy))
}

// serveKind performs one operation on the instance's sandbox of spec's
// kind (probe.sandbox.local, probe.sandbox.container: the conformance
// suite through the module, one run per operation).
func serveKind(ctx *agent.Context, spec sandbox.Spec, req sandboxop.Request) sandboxop.Response {
	sb, err := sandbox.Open(ctx, spec)
	if err != nil {
		return sandboxop.Response{Error: sandboxop.EncodeError(err)}
	}
	return sandboxop.Serve(ctx, sb, req)
}

// EgressPolicy is probe.sandbox.container's: what its container may send.
// Service "api" (declared https://api.damper.test, the secret
// EGRESS_TOKEN as a Bearer token): GET /v1/** and POST /v1/items (rule
// "post-items", a JSON body whose "kind" is "note"), nothing else;
// service "plain" (declared http://plain.damper.test, the secret
// PLAIN_TOKEN in X-Api-Key): GET /v1/**. The tests point both at
// loopback fakes with target overrides.
var EgressPolicy = must(policy.New(
	policy.NewService("api", "https://api.damper.test").
		Credential("Authorization", "Bearer ${secret:EGRESS_TOKEN}").
		AddHeaders("Content-Type", "X-Trace").
		Level(policy.DenyAll).
		Allow(
			policy.On("/v1/**", "GET").ID("read-v1"),
			policy.On("/v1/items", "POST").ID("post-items").JSON("/kind", "note"),
		),
	policy.NewService("plain", "http://plain.damper.test").
		Credential("X-Api-Key", "${secret:PLAIN_TOKEN}").
		Level(policy.DenyAll).
		Allow(policy.On("/v1/**", "GET").ID("plain-read")),
))

// ExecStreamIn asks probe.sandbox.stream to run Script in its sandbox of Kind
// with writers on both streams.
type ExecStreamIn struct {
	Kind   sandbox.Kind `json:"kind"`
	Script string       `json:"script"`
}

// ExecStreamOut is each write the writers got, in order, and the Result.
type ExecStreamOut struct {
	Stdout []string        `json:"stdout"`
	Stderr []string        `json:"stderr"`
	Result *sandbox.Result `json:"result"`
	Error  string          `json:"error,omitempty"`
}

func init() {
	agent.Register("probe.sandbox.stream", func(ctx *agent.Context, in ExecStreamIn) (ExecStreamOut, error) {
		var out ExecStreamOut
		sb, err := sandbox.Open(ctx, sandbox.Spec{Kind: in.Kind})
		if err != nil {
			return out, err
		}
		res, err := sb.Exec(ctx, sandbox.Cmd{Script: in.Script,
			Stdout: writes(func(s string) { out.Stdout = append(out.Stdout, s) }),
			Stderr: writes(func(s string) { out.Stderr = append(out.Stderr, s) }),
		})
		out.Result = res
		if err != nil {
			out.Error = err.Error()
		}
		return out, nil
	}, agent.WithPolicy(EgressPolicy))
}

type writes func(string)

func (w writes) Write(p []byte) (int, error) { w(string(p)); return len(p), nil }
