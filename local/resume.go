package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Resume starts again every run the ledgers of the data directory hold
// unfinished (queued, or running when its process was lost), with the
// same run id, in the order they were created: `damper serve` calls it
// when it starts. A run of damper run (ModeCLI), or of an agent the module
// no longer has, cannot resume: it fails with an error that says why. It
// returns how many runs it queued.
func (h *Host) Resume(ctx context.Context) (int, error) {
	var files []string
	err := filepath.WalkDir(h.cfg.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == h.cfg.dataDir {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".sqlite") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("resume runs: scan %s: %w", h.cfg.dataDir, err)
	}
	queued := 0
	var errs []error
	for _, path := range files {
		n, err := h.resumeFile(ctx, path)
		queued += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return queued, errors.Join(errs...)
}

// resumeFile resumes the unfinished runs of one database.
func (h *Host) resumeFile(ctx context.Context, path string) (int, error) {
	probe := h.core.NewInstance("", "", path)
	runs, err := probe.Unfinished(ctx)
	probe.Close()
	if err != nil || len(runs) == 0 {
		return 0, err
	}
	key := instanceKey{runs[0].Agent, runs[0].Instance}
	if !ValidName(key.agent) || !ValidName(key.id) || filepath.Clean(dbPath(h.cfg.dataDir, key.agent, key.id)) != filepath.Clean(path) {
		return 0, fmt.Errorf("resume runs: %s holds runs of %s/%s, which live elsewhere; skipped", path, key.agent, key.id)
	}
	ai, release, err := h.acquire(key)
	if err != nil {
		return 0, err
	}
	defer release()
	queued := 0
	for _, r := range runs {
		h.mu.Lock()
		_, taken := h.runs[r.ID]
		h.mu.Unlock()
		if taken {
			continue
		}
		var why string
		switch {
		case r.Mode == ModeCLI:
			why = fmt.Sprintf("run %s was interrupted: the damper run process that ran it ended before the run did", r.ID)
		case !h.agents[r.Agent]:
			why = fmt.Sprintf("run %s was interrupted and cannot resume: the module no longer has agent %q", r.ID, r.Agent)
		case len(r.Payload) == 0:
			why = fmt.Sprintf("run %s was interrupted and cannot resume: its payload is not in the ledger", r.ID)
		}
		if why != "" {
			h.failRecorded(ai, r, why)
			continue
		}
		runCtx, cancel := context.WithCancelCause(h.ctx)
		req := &runRequest{key: key, rec: r, ctx: runCtx, cancel: cancel, done: make(chan struct{})}
		if !h.reserve(ai) {
			cancel(nil)
			h.failRecorded(ai, r, fmt.Sprintf("run %s was interrupted and cannot resume: agent instance %s/%s already has %d runs waiting", r.ID, key.agent, key.id, h.cfg.maxQueue))
			continue
		}
		if err := h.enqueueRun(ai, req); err != nil {
			cancel(nil)
			return queued, err
		}
		ai.logger.Info("resuming an interrupted run", "run", r.ID, "attempts", r.Attempts)
		queued++
	}
	return queued, nil
}

// failRecorded ends a recorded run that will not run again.
func (h *Host) failRecorded(ai *agentInstance, r Run, why string) {
	rec, err := ai.inst.FinishRun(context.Background(), r.ID, StatusFailed, nil, &wire.Error{Type: errInterrupted, Message: why, Status: 500})
	if err != nil {
		ai.logger.Error("record the end of a run", "run", r.ID, "err", err)
		return
	}
	ai.logger.Warn(why)
	h.hostEvent(ai, rec.ID, event.RunError{ErrorType: errInterrupted, Message: why, Status: 500, Usage: rec.Usage, Cost: rec.Cost, DurationMs: duration(rec)})
}
