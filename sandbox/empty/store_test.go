//go:build !wasip1

package empty

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/sandbox"
)

// storeTestFunc is what emptytest.func runs: a test's code inside a run.
var storeTestFunc func(ctx *agent.Context) error

func init() {
	agent.Register("emptytest.func", func(ctx *agent.Context, _ struct{}) (struct{}, error) {
		return struct{}{}, storeTestFunc(ctx)
	})
}

// inRun runs f inside a run of agent instance id.
func inRun(t *testing.T, h *agenttest.Host, id string, f func(ctx *agent.Context) error) error {
	t.Helper()
	storeTestFunc = f
	_, err := h.Run(t.Context(), "emptytest.func", id, nil)
	return err
}

func mustInRun(t *testing.T, h *agenttest.Host, id string, f func(ctx *agent.Context, sb sandbox.Sandbox) error) {
	t.Helper()
	require.NoError(t, inRun(t, h, id, func(ctx *agent.Context) error {
		sb, err := sandbox.Open(ctx, sandbox.Empty())
		if err != nil {
			return err
		}
		return f(ctx, sb)
	}))
}

// sqlStatements counts the sql effects of each batch and the statements
// that touch the sandbox's tables.
type sqlCounter struct {
	effects, selects, writes int
}

func (c *sqlCounter) watch(h *agenttest.Host) {
	h.OnBatch = func(batch []agenttest.Effect) {
		for _, e := range batch {
			if e.Type != wire.EffectSQL {
				continue
			}
			var args wire.SQLArgs
			if json.Unmarshal(e.Args, &args) != nil {
				continue
			}
			touches := false
			for _, st := range args.Statements {
				if strings.Contains(st.SQL, "_damper_sandbox_files") {
					touches = true
					if strings.HasPrefix(strings.TrimSpace(st.SQL), "SELECT") {
						c.selects++
					}
				}
			}
			if touches {
				c.effects++
			}
			for _, st := range args.Statements {
				if strings.HasPrefix(st.SQL, "INSERT INTO _damper_sandbox_files") || strings.HasPrefix(st.SQL, "DELETE FROM _damper_sandbox_files") {
					c.writes++
					break
				}
			}
		}
	}
}

func TestFilesAreLoadedOnceAndStoredOncePerOperation(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	var c sqlCounter
	c.watch(h)

	mustInRun(t, h, "once", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		return sb.WriteFile(ctx, "a.txt", []byte("a"))
	})
	assert.Equal(t, 1, c.selects, "the first Open loads the files")
	assert.Equal(t, 1, c.writes, "one batch for the write")

	c = sqlCounter{}
	c.watch(h)
	mustInRun(t, h, "once", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		if _, err := sb.ReadFile(ctx, "a.txt"); err != nil {
			return err
		}
		if _, err := sb.Stat(ctx, "a.txt"); err != nil {
			return err
		}
		res, err := sb.Exec(ctx, sandbox.Cmd{Script: "cat a.txt; for i in $(seq 1 50); do echo $i > f$i.txt; done; mkdir -p d/e && cp f1.txt d/e/; rm f2.txt"})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("exec: %s", res.Stderr)
		}
		_, err = sb.Exec(ctx, sandbox.Cmd{Script: "grep -c 1 f*.txt > /dev/null; cat a.txt"})
		return err
	})
	assert.Equal(t, 0, c.selects, "the module instance has the files: no load")
	assert.Equal(t, 1, c.writes, "reads write nothing; an exec that changed 52 files is one batch; one that changed none, none")

	agenttest.Restart()
	c = sqlCounter{}
	c.watch(h)
	mustInRun(t, h, "once", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		res, err := sb.Exec(ctx, sandbox.Cmd{Script: "ls | wc -l; cat f50.txt d/e/f1.txt; ls f2.txt"})
		if err != nil {
			return err
		}
		assert.Equal(t, "51\n50\n1\n", res.Stdout, "a.txt, d and f1..f50 but f2")
		assert.Equal(t, 2, res.ExitCode, "f2.txt is gone")
		return nil
	})
	assert.Equal(t, 1, c.selects, "a new module instance loads again")
}

func TestLargeAndBinaryFilesSurviveARestart(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	// A text file over three pieces, with a multi-byte rune across the
	// first piece boundary, and a binary file over two.
	text := strings.Repeat("a", pieceSize-1) + "é" + strings.Repeat("ü", pieceSize/2) + "end\n"
	bin := make([]byte, pieceSize+10)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	mustInRun(t, h, "big", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		if err := sb.WriteFile(ctx, "big.txt", []byte(text)); err != nil {
			return err
		}
		if err := sb.WriteFile(ctx, "dir/big.bin", bin); err != nil {
			return err
		}
		return sb.WriteFile(ctx, "dir/empty", nil)
	})
	agenttest.Restart()
	mustInRun(t, h, "big", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		got, err := sb.ReadText(ctx, "big.txt")
		require.NoError(t, err)
		assert.True(t, got == text, "the text file is whole (%d bytes, want %d)", len(got), len(text))
		b, err := sb.ReadFile(ctx, "dir/big.bin")
		require.NoError(t, err)
		assert.True(t, bytes.Equal(bin, b), "the binary file is whole")
		b, err = sb.ReadFile(ctx, "dir/empty")
		require.NoError(t, err)
		assert.Empty(t, b)
		// Shrinking a file leaves no stale piece behind.
		return sb.WriteFile(ctx, "big.txt", []byte("small\n"))
	})
	agenttest.Restart()
	mustInRun(t, h, "big", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		got, err := sb.ReadText(ctx, "big.txt")
		require.NoError(t, err)
		assert.Equal(t, "small\n", got)
		return nil
	})
}

func TestLoadIsPaged(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	limits := sandbox.Limits{MaxFileSize: 4 << 20, MaxTotalSize: 32 << 20}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	require.NoError(t, inRun(t, h, "paged", func(ctx *agent.Context) error {
		sb, err := sandbox.Open(ctx, sandbox.Spec{Kind: sandbox.KindEmpty, Limits: limits})
		if err != nil {
			return err
		}
		for i := 0; i < 4; i++ {
			if err := sb.WriteFile(ctx, fmt.Sprintf("f%d", i), chunk); err != nil {
				return err
			}
		}
		return nil
	}))
	agenttest.Restart()
	var c sqlCounter
	c.watch(h)
	require.NoError(t, inRun(t, h, "paged", func(ctx *agent.Context) error {
		sb, err := sandbox.Open(ctx, sandbox.Spec{Kind: sandbox.KindEmpty, Limits: limits})
		if err != nil {
			return err
		}
		for i := 0; i < 4; i++ {
			b, err := sb.ReadFile(ctx, fmt.Sprintf("f%d", i))
			if err != nil {
				return err
			}
			if !bytes.Equal(b, chunk) {
				return fmt.Errorf("f%d: %d bytes, want %d", i, len(b), len(chunk))
			}
		}
		return nil
	}))
	assert.Greater(t, c.selects, 2, "12 MiB load in pages of about 4 MiB")
}

func TestAnotherModuleInstanceTakingOverFailsAStaleWrite(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	mustInRun(t, h, "stale", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		return sb.WriteFile(ctx, "a.txt", []byte("first"))
	})
	// Another module instance loads the files meanwhile: its claim is
	// what this one finds at its next write.
	require.NoError(t, inRun(t, h, "stale", func(ctx *agent.Context) error {
		_, err := instance.Exec(ctx, wire.Statement{SQL: `UPDATE _damper_sandbox_owner SET owner = 'another-instance' WHERE id = 1`})
		return err
	}))
	err := inRun(t, h, "stale", func(ctx *agent.Context) error {
		sb, err := sandbox.Open(ctx, sandbox.Empty())
		if err != nil {
			return err
		}
		return sb.WriteFile(ctx, "a.txt", []byte("stale write"))
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another module instance loaded the files")
	mustInRun(t, h, "stale", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		b, err := sb.ReadFile(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "first", string(b), "the stale write stored nothing, and the next open loads what was stored")
		return sb.WriteFile(ctx, "a.txt", []byte("second"))
	})
	agenttest.Restart()
	mustInRun(t, h, "stale", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		b, err := sb.ReadFile(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "second", string(b), "having loaded again, this module instance owns the files")
		return nil
	})
}

func TestConcurrentGoroutinesOfARun(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	mustInRun(t, h, "group", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		g := ctx.Group()
		for i := 0; i < 8; i++ {
			g.Go(func() error {
				if err := sb.WriteFile(ctx, fmt.Sprintf("g%d/file.txt", i), []byte(fmt.Sprint(i))); err != nil {
					return err
				}
				_, err := sb.Exec(ctx, sandbox.Cmd{Script: fmt.Sprintf("echo %d >> g%d/file.txt; echo shared > same.txt", i, i)})
				return err
			})
		}
		return g.Wait()
	})
	agenttest.Restart()
	mustInRun(t, h, "group", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		for i := 0; i < 8; i++ {
			b, err := sb.ReadFile(ctx, fmt.Sprintf("g%d/file.txt", i))
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("%d%d\n", i, i), string(b))
		}
		b, err := sb.ReadFile(ctx, "same.txt")
		require.NoError(t, err)
		assert.Equal(t, "shared\n", string(b))
		return nil
	})
}

func TestASandboxBelongsToItsInstance(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	var kept sandbox.Sandbox
	mustInRun(t, h, "owner", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		kept = sb
		return sb.WriteFile(ctx, "mine", []byte("x"))
	})
	err := inRun(t, h, "intruder", func(ctx *agent.Context) error {
		_, err := kept.ReadFile(ctx, "mine")
		return err
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "belongs to agent instance emptytest.func/owner")
	mustInRun(t, h, "intruder", func(ctx *agent.Context, sb sandbox.Sandbox) error {
		ok, err := sb.Exists(ctx, "mine")
		require.NoError(t, err)
		assert.False(t, ok, "another instance's sandbox is its own")
		return nil
	})
}
