package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

func newLogInstance(t testing.TB, retention int) (*Core, *Instance, string) {
	t.Helper()
	c, err := New(wire.Manifest{ABI: wire.Version, Agents: []wire.AgentEntry{{Name: "a"}}}, Options{Logger: testLogger(t), EventRetention: retention})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "a", "i.sqlite")
	inst := c.NewInstance("a", "i", path)
	t.Cleanup(func() { inst.Close() })
	return c, inst, path
}

func appendN(t testing.TB, inst *Instance, run string, n int) []event.Envelope {
	t.Helper()
	evs := make([]wire.Event, n)
	for i := range evs {
		evs[i] = wire.Event{Type: "text.delta", Data: json.RawMessage(fmt.Sprintf(`{"text":"%d"}`, i))}
	}
	envs, err := inst.AppendEvents(context.Background(), run, evs)
	require.NoError(t, err)
	return envs
}

// Sequence numbers are contiguous per agent instance, across appends,
// across runs and across a reopened database.
func TestEventSeqIsContiguousAndDurable(t *testing.T) {
	c, inst, path := newLogInstance(t, 0)
	appendN(t, inst, "r_1", 3)
	appendN(t, inst, "r_2", 2)
	require.NoError(t, inst.Close())

	again := c.NewInstance("a", "i", path)
	defer again.Close()
	envs := appendN(t, again, "r_2", 1)
	assert.EqualValues(t, 6, envs[0].Seq)
	all, err := again.ReadEvents(context.Background(), 0, "", 100)
	require.NoError(t, err)
	require.Len(t, all, 6)
	for i, e := range all {
		assert.EqualValues(t, i+1, e.Seq)
	}
	mine, err := again.ReadEvents(context.Background(), 3, "r_2", 100)
	require.NoError(t, err)
	require.Len(t, mine, 3)
	assert.EqualValues(t, 4, mine[0].Seq)
	last, err := again.LastSeq(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 6, last)
}

// The log keeps the newest events up to its retention, and numbering
// goes on past pruning.
func TestEventRetention(t *testing.T) {
	_, inst, _ := newLogInstance(t, 100)
	for range 10 {
		appendN(t, inst, "r", 50)
	}
	all, err := inst.ReadEvents(context.Background(), 0, "", 1000)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	assert.EqualValues(t, 500, all[len(all)-1].Seq)
	assert.LessOrEqual(t, len(all), 100+pruneEvery, "bounded by the retention and one prune interval")
	assert.GreaterOrEqual(t, len(all), 100)
	for i := 1; i < len(all); i++ {
		assert.Equal(t, all[i-1].Seq+1, all[i].Seq)
	}
}

// Reading creates nothing: no database file for an instance that never
// ran, and no host tables in a database that has none.
func TestReadsCreateNothing(t *testing.T) {
	_, inst, path := newLogInstance(t, 0)
	evs, err := inst.ReadEvents(context.Background(), 0, "", 10)
	require.NoError(t, err)
	assert.Empty(t, evs)
	runs, err := inst.Runs(context.Background(), 10)
	require.NoError(t, err)
	assert.Empty(t, runs)
	_, found, err := inst.GetRun(context.Background(), "r_x")
	require.NoError(t, err)
	assert.False(t, found)
	assert.NoFileExists(t, path)
	assert.False(t, inst.Exists())

	s, err := inst.Store(context.Background())
	require.NoError(t, err)
	_, werr := s.Batch(context.Background(), wire.SQLArgs{Statements: []wire.Statement{{SQL: `CREATE TABLE mine (v TEXT)`}}})
	require.Nil(t, werr)
	runs, err = inst.Runs(context.Background(), 10)
	require.NoError(t, err)
	assert.Empty(t, runs)
	has, err := hasHostTables(context.Background(), s.conn)
	require.NoError(t, err)
	assert.False(t, has)
}

// The ledger follows a run from queued to its end, with the usage and cost
// of its turns summed as their events are appended.
func TestLedger(t *testing.T) {
	ctx := context.Background()
	_, inst, _ := newLogInstance(t, 0)
	r := Run{ID: "r_1", Mode: ModeBackground, Payload: json.RawMessage(`{"x":1}`), Model: "test/m"}
	require.NoError(t, inst.RecordRun(ctx, &r))
	got, found, err := inst.GetRun(ctx, "r_1")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, RunQueued, got.Status)
	assert.JSONEq(t, `{"x":1}`, string(got.Payload))
	assert.Equal(t, "a", got.Agent)
	assert.Equal(t, "i", got.Instance)

	started, err := inst.StartRun(ctx, "r_1")
	require.NoError(t, err)
	assert.Equal(t, RunRunning, started.Status)
	assert.Equal(t, 1, started.Attempts)
	unfinished, err := inst.Unfinished(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, 1)

	for _, cost := range []float64{0.25, 0.5} {
		_, err := inst.AppendEvents(ctx, "r_1", []wire.Event{{Type: "turn.finish", Data: json.RawMessage(fmt.Sprintf(
			`{"model":"m","usage":{"input_tokens":10,"output_tokens":5,"cache_read_tokens":2},"cost":%v,"duration_ms":1}`, cost))}})
		require.NoError(t, err)
	}
	again, err := inst.StartRun(ctx, "r_1")
	require.NoError(t, err)
	assert.Equal(t, 2, again.Attempts)
	assert.Equal(t, started.Started, again.Started, "started is the first start")

	done, err := inst.FinishRun(ctx, "r_1", RunDone, json.RawMessage(`{"ok":true}`), nil)
	require.NoError(t, err)
	assert.Equal(t, RunDone, done.Status)
	assert.Equal(t, event.Usage{InputTokens: 20, OutputTokens: 10, CacheReadTokens: 4}, done.Usage)
	assert.InDelta(t, 0.75, done.Cost, 1e-9)
	assert.False(t, done.Finished.IsZero())
	unfinished, err = inst.Unfinished(ctx)
	require.NoError(t, err)
	assert.Empty(t, unfinished)

	b, err := json.Marshal(done)
	require.NoError(t, err)
	var back Run
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, done.ID, back.ID)
	assert.Equal(t, done.Usage, back.Usage)
	assert.JSONEq(t, `{"ok":true}`, string(back.Result))
	assert.Nil(t, back.Payload, "the payload is not in the run's JSON")
	assert.True(t, done.Finished.Equal(back.Finished))
	assert.NotContains(t, string(b), "payload")

	require.NoError(t, inst.RecordRun(ctx, &Run{ID: "r_2", Mode: ModeSync, Payload: json.RawMessage(`null`)}))
	_, err = inst.FinishRun(ctx, "r_2", RunFailed, nil, &wire.Error{Type: "agent_error", Message: "boom", Status: 500})
	require.NoError(t, err)
	runs, err := inst.Runs(ctx, 10)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, "r_2", runs[0].ID, "newest first")
	assert.Equal(t, &wire.Error{Type: "agent_error", Message: "boom", Status: 500}, runs[0].Error)

	require.NoError(t, inst.ForgetRun(ctx, "r_2"))
	_, found, err = inst.GetRun(ctx, "r_2")
	require.NoError(t, err)
	assert.False(t, found)
	_, err = inst.StartRun(ctx, "r_nope")
	assert.ErrorContains(t, err, "not in the ledger")
}

// The guest's statements may not name the host's tables, however they
// spell them: the event log and the ledger are the host's word.
func TestGuestCannotTouchHostTables(t *testing.T) {
	ctx := context.Background()
	_, inst, _ := newLogInstance(t, 0)
	appendN(t, inst, "r", 1)
	s, err := inst.Store(ctx)
	require.NoError(t, err)
	for _, stmt := range []string{
		`SELECT * FROM _damper_host_events`,
		`DELETE FROM _damper_host_events`,
		`UPDATE _damper_host_runs SET status = 'done'`,
		`INSERT INTO _DAMPER_HOST_EVENTS (seq, time, type) VALUES (99, 0, 'run.finish')`,
		`SELECT * FROM "_damper_host_events"`,
		`SELECT * FROM [_Damper_Host_Runs]`,
		`DROP TABLE _damper_host_events`,
		`CREATE TRIGGER t AFTER INSERT ON _damper_host_events BEGIN SELECT 1; END`,
		`ALTER TABLE _damper_host_runs RENAME TO x`,
		`CREATE VIEW v AS SELECT * FROM main._damper_host_events`,
	} {
		_, werr := s.Batch(ctx, wire.SQLArgs{Statements: []wire.Statement{{SQL: stmt}}})
		require.NotNil(t, werr, "%s", stmt)
		assert.Equal(t, wire.ErrSQL, werr.Type, "%s", stmt)
		assert.Contains(t, werr.Message, HostTablesMessage, "%s", stmt)
	}
	// The authorizer holds even where the text check could not look: a
	// view created before is read through its own name.
	_, werr := s.Batch(ctx, wire.SQLArgs{Statements: []wire.Statement{{SQL: `SELECT name FROM sqlite_master WHERE type = 'table'`}}})
	require.Nil(t, werr, "the schema itself stays readable")
	evs, err := inst.ReadEvents(ctx, 0, "", 10)
	require.NoError(t, err)
	assert.Len(t, evs, 1, "the log is unchanged")
	assert.True(t, hostTable("_DAMPER_HOST_x"))
	assert.False(t, hostTable("_damper_state"))
	assert.True(t, namesHostTable(strings.ToUpper("select * from _damper_host_runs")))
}

// Destroy deletes the instance's database and everything in it.
func TestDestroy(t *testing.T) {
	c, inst, path := newLogInstance(t, 0)
	appendN(t, inst, "r", 2)
	require.FileExists(t, path)
	require.NoError(t, inst.Destroy())
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist)
	fresh := c.NewInstance("a", "i", path)
	defer fresh.Close()
	envs := appendN(t, fresh, "r2", 1)
	assert.EqualValues(t, 1, envs[0].Seq, "a deleted instance starts again empty")
}
