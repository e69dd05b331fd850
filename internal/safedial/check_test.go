package safedial

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// check is what every connection not to an allowed origin passes: the
// transport test reaches only loopback, so the public side is tested here.
func TestCheck(t *testing.T) {
	assert.NoError(t, check("api.github.com:443", "140.82.112.5:443"))
	assert.NoError(t, check("api.github.com:443", "[2606:50c0:8000::154]:443"))
	var refused *RefusedError
	require.ErrorAs(t, check("evil.test:443", "[::ffff:10.0.0.1]:443"), &refused)
	assert.Equal(t, "evil.test:443", refused.Addr)
	assert.Equal(t, "10.0.0.1", refused.IP.Unmap().String())
	require.ErrorAs(t, check("evil.test:443", "not-an-address"), &refused)
	assert.False(t, refused.IP.IsValid())
}
