package tests

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/event"
)

// kill ends `damper serve` at once (SIGKILL: no shutdown of any kind),
// and starts it again on the same data directory.
func (h *localHost) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, h.cmd.Process.Kill())
	_ = h.cmd.Wait()
	h.cmd = nil
	h.start(t)
}

// TestDurableRuns loses the process (or the Durable Object) in the
// middle of a run of durable steps, on both hosts, and checks that the
// run starts again with the same id and finishes, each step done once:
// locally when damper serve starts again after a SIGKILL, on workerd when
// the resume alarm fires after wrangler dev restarted; and, on both, when
// the module instance traps.
func TestDurableRuns(t *testing.T) {
	forEachHost(t, token, nil, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		t.Run("process_lost", func(t *testing.T) {
			run := c.background(t, "probe.steps", "durable", `{"steps":6,"sleep_ms":300}`)
			// Two steps done, then the process goes.
			done := 0
			c.waitFor(t, "probe.steps", "durable", run, func(e sseEvent) bool {
				if e.env.Type == event.TypeLog {
					done++
				}
				return done == 2
			})
			switch h := h.(type) {
			case *localHost:
				h.kill(t)
			case *workerHost:
				h.Restart(t)
			}
			checkResumed(t, c, "probe.steps", "durable", run, 6, 2)
		})
		t.Run("module_instance_trapped", func(t *testing.T) {
			run := c.background(t, "probe.steps", "trapped", `{"steps":4,"sleep_ms":20,"crash_at":2}`)
			checkResumed(t, c, "probe.steps", "trapped", run, 4, 2)
		})
	})
}

// checkResumed waits for run to end and checks it finished on its second
// attempt with each of its steps done exactly once.
func checkResumed(t *testing.T, c *client, agent, id, run string, steps, attempts int) {
	t.Helper()
	c.waitFor(t, agent, id, run, func(e sseEvent) bool { return event.Terminal(e.env.Type) })
	v := c.getRun(t, agent, id, run)
	require.Equal(t, "done", v.Status, "%+v", v.Error)
	assert.Equal(t, attempts, v.Attempts)
	var out struct {
		Executions []int `json:"executions"`
		Attempt    int   `json:"attempt"`
	}
	require.NoError(t, json.Unmarshal(v.Result, &out))
	want := make([]int, steps)
	for i := range want {
		want[i] = 1
	}
	assert.Equal(t, want, out.Executions, "each step done once")
	assert.Equal(t, attempts, out.Attempt, "the handler saw its attempt")

	evs := c.stream(t, http.MethodGet, "/agents/"+agent+"/"+id+"/runs/"+run+"/events", nil, nil).all(t)
	var starts []int
	logged := map[float64]int{}
	for _, e := range evs {
		p, err := e.env.Payload()
		require.NoError(t, err)
		switch p := p.(type) {
		case event.RunStart:
			starts = append(starts, p.Attempt)
		case event.Log:
			var attrs struct{ Step float64 }
			require.NoError(t, json.Unmarshal(p.Attrs, &attrs))
			logged[attrs.Step]++
		}
		assert.Equal(t, run, e.env.Run, "the same run id throughout")
	}
	assert.Equal(t, []int{1, 2}, starts, "run.start again, attempt 2")
	assert.Len(t, logged, steps)
	for step, n := range logged {
		assert.Equal(t, 1, n, "step %v logged once", step)
	}
	assert.Equal(t, event.TypeRunFinish, evs[len(evs)-1].env.Type)
	assert.WithinDuration(t, time.Now(), v.Finished, 5*time.Minute)
}
