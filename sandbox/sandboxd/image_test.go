//go:build imagetest

package sandboxd_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxd"
	"github.com/damperdev/damper/sandbox/sandboxtest"
)

// TestImage runs the conformance suite against a sandboxd of the
// container image (build/container/test-image.sh starts one and runs
// `go test -tags imagetest -run TestImage ./sandbox/sandboxd` with
// DAMPER_SANDBOXD_URL). Its /workspace is emptied before each subtest.
func TestImage(t *testing.T) {
	url := os.Getenv("DAMPER_SANDBOXD_URL")
	require.NotEmpty(t, url, "DAMPER_SANDBOXD_URL: the image's sandboxd (build/container/test-image.sh)")
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox {
		c, err := sandboxd.Dial(t.Context(), url, nil, sandbox.KindContainer)
		require.NoError(t, err)
		require.Equal(t, "/workspace", c.Dir())
		entries, err := c.ReadDir(t.Context(), ".")
		require.NoError(t, err)
		for _, e := range entries {
			require.NoError(t, c.RemoveAll(t.Context(), e.Name()))
		}
		return c
	}, sandboxtest.Features{Streams: true, Permissions: true})

	t.Run("image_tools", func(t *testing.T) {
		c, err := sandboxd.Dial(t.Context(), url, nil, sandbox.KindContainer)
		require.NoError(t, err)
		res, err := c.Exec(t.Context(), sandbox.Cmd{Script: "id -u; for t in bash curl git jq python3 awk sed grep find tar; do command -v $t >/dev/null || echo missing $t; done; env | grep -c -i -e token -e secret -e key"})
		require.NoError(t, err)
		require.Equal(t, "1000\n0\n", res.Stdout, "unprivileged, every tool there, no credential in the environment: %s", res.Stderr)
	})
}
