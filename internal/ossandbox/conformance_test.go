package ossandbox

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxtest"
)

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox {
		sb, err := New(Config{Dir: t.TempDir(), Kind: sandbox.KindLocal, Env: EnvFrom(AllowedEnv, os.LookupEnv)})
		require.NoError(t, err)
		t.Cleanup(func() { sb.Close() })
		return sb
	}, sandboxtest.Features{Streams: true, Permissions: os.Geteuid() != 0})
}
