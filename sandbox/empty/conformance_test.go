//go:build !wasip1

package empty

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxtest"
)

// Small limits, so that the suite reaches them quickly.
var testLimits = sandbox.Limits{MaxFileSize: 64 << 10, MaxTotalSize: 256 << 10, MaxFiles: 1000}

var testFeatures = sandboxtest.Features{Confined: true, MaxFileSize: testLimits.MaxFileSize, MaxTotalSize: testLimits.MaxTotalSize}

func init() {
	// emptytest.op performs one operation of the sandbox surface on the
	// instance's empty sandbox, as the probe agent of the e2e suite does.
	agent.Register("emptytest.op", func(ctx *agent.Context, req sandboxop.Request) (sandboxop.Response, error) {
		sb, err := sandbox.Open(ctx, sandbox.Spec{Kind: sandbox.KindEmpty, Limits: testLimits})
		if err != nil {
			return sandboxop.Response{Error: sandboxop.EncodeError(err)}, nil
		}
		return sandboxop.Serve(ctx, sb, req), nil
	})
}

func TestConformanceInMemory(t *testing.T) {
	f := testFeatures
	f.Streams = true
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox { return newMemory(testLimits) }, f)
}

var instanceSeq atomic.Int64

// storedSandbox is the empty sandbox of a new agent instance, each of
// whose operations is a run under agenttest (real SQLite). With restart,
// the module instance is replaced before every operation, so every one
// starts from what the previous ones stored.
func storedSandbox(t *testing.T, h *agenttest.Host, restart bool) sandbox.Sandbox {
	id := fmt.Sprintf("conformance-%d", instanceSeq.Add(1))
	return sandboxop.Client(sandbox.KindEmpty, Dir, func(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
		if restart {
			agenttest.Restart()
		}
		out, err := h.Run(ctx, "emptytest.op", id, req)
		if err != nil {
			return sandboxop.Response{}, err
		}
		var r sandboxop.Response
		return r, json.Unmarshal(out, &r)
	})
}

func TestConformanceStored(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox { return storedSandbox(t, h, false) }, testFeatures)
}

func TestConformanceStoredAndReloaded(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox { return storedSandbox(t, h, true) }, testFeatures)
}

func TestOpenOutsideARun(t *testing.T) {
	_, err := sandbox.Open(context.Background(), sandbox.Empty())
	require.ErrorContains(t, err, "not in a run")
}
