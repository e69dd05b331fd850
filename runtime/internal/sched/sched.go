// Package sched runs the tasks of a module instance: it is the pure-Go half
// of the guest side of the ABI (docs/abi.md), under the exports in
// runtime/abi, and it compiles natively so that everything above it can be
// tested with plain go test.
//
// A task runs its handler in a goroutine. Every goroutine of a task (the
// handler and those started with Group.Go) is counted while it runs. A
// goroutine that issues an effect puts it in the task's pending batch and
// blocks on its own result; when no goroutine of the task is running any
// more, the export that is waiting returns the batch. Resume hands each
// result to its waiter and waits again. The host never sees a batch while a
// goroutine of the task could still add to it, and an export never blocks
// with nothing runnable, which a wasip1 reactor would turn into a fatal
// deadlock.
package sched

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// RunFunc runs one task to its end. ctx is the task (see FromContext); the
// function issues effects with Perform and starts goroutines with Group. It
// returns the task's result JSON or its error.
type RunFunc func(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error)

// Scheduler is the task table of one module instance. Its exported methods
// are the bodies of damper_start, damper_resume and damper_cancel: they take
// the export's input JSON and return its output JSON, and never panic on
// bad input. An output is valid until the next call; the input is not
// used after the call returns.
type Scheduler struct {
	run RunFunc

	// call serializes export calls, as a module instance takes one at a
	// time. It matters only natively, where tests may call from several
	// goroutines.
	call  sync.Mutex
	tasks map[string]*Task
	out   []byte // the last batch: reused, as an output is valid until the next call

	// resumes counts Resume calls. A pending effect's decoded value is
	// its answer's only if decoded during the current call: the host
	// reuses its input buffer, so an earlier call's value may sit at the
	// same place with other contents.
	resumes   uint64
	decodedFn func(task string, id uint64) *wirejson.Decoded
}

// New returns a Scheduler whose tasks run run.
func New(run RunFunc) *Scheduler {
	s := &Scheduler{run: run, tasks: make(map[string]*Task)}
	s.decodedFn = s.decoded // once: a method value made per call may allocate
	return s
}

// decoded is where DecodeResumeInto decodes the value of effect id of
// task: the waiting effect's own copy, when it asked for a type decoded
// by hand (the fetch value parsed once, not skipped then parsed again).
func (s *Scheduler) decoded(task string, id uint64) *wirejson.Decoded {
	t := s.tasks[task]
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.outstandingLocked(id)
	if p == nil || p.posted || p.decoded.V == nil {
		return nil
	}
	p.decodedAt = s.resumes
	return &p.decoded
}

// Start is damper_start: it decodes a wire.Start, runs its task until the
// task finishes or waits on the host, and returns the wire.Output.
func (s *Scheduler) Start(in []byte) []byte {
	s.call.Lock()
	defer s.call.Unlock()
	var start wire.Start
	if err := json.Unmarshal(in, &start); err != nil {
		return encodeDone(taskOf(in), nil, badTask("decode start: %v", err))
	}
	if start.Task == "" {
		return encodeDone("", nil, badTask("start names no task"))
	}
	if _, ok := s.tasks[start.Task]; ok {
		return encodeDone(start.Task, nil, badTask("task %q is already running", start.Task))
	}
	t := newTask(&start)
	s.tasks[start.Task] = t
	t.live, t.running = 1, 1
	go t.main(s.run)
	return s.wait(t)
}

// Resume is damper_resume: it delivers the results of the task's last batch
// and runs the task until it finishes or waits on the host again. A resume
// that does not answer exactly the last batch ends the task with bad_task.
func (s *Scheduler) Resume(in []byte) []byte {
	s.call.Lock()
	defer s.call.Unlock()
	s.resumes++
	resume, err := wirejson.DecodeResumeInto(in, s.decodedFn)
	if err != nil {
		return s.abort(taskOf(in), badTask("decode resume: %v", err))
	}
	t, ok := s.tasks[resume.Task]
	if !ok {
		return encodeDone(resume.Task, nil, badTask("no task %q", resume.Task))
	}
	t.mu.Lock()
	if err := t.checkResultsLocked(resume.Results); err != nil {
		t.mu.Unlock()
		return s.abort(resume.Task, err)
	}
	// Every answer is in place before the first goroutine wakes: a woken
	// goroutine recycles its pending effect, which must not be read again.
	for _, p := range t.outstanding {
		if p.posted { // no one waits for it
			p.release()
			continue
		}
		// The decode is the answer's when it was made by this call from
		// the very bytes of the answer's value (see DecodeResumeInto).
		raw, v := p.decoded.Raw, p.answer.Value
		p.direct = p.decodedAt == s.resumes && len(raw) > 0 && len(raw) == len(v) && &raw[0] == &v[0]
		t.wakeLocked()
		p.result <- p.answer
	}
	t.outstanding = t.outstanding[:0]
	t.mu.Unlock()
	return s.wait(t)
}

// Cancel is damper_cancel: it fails the task's outstanding effects with
// canceled, runs the task to its end (its new effects fail at once) and
// returns done with a canceled error.
func (s *Scheduler) Cancel(in []byte) []byte {
	s.call.Lock()
	defer s.call.Unlock()
	var cancel wire.Cancel
	if err := json.Unmarshal(in, &cancel); err != nil {
		return encodeDone(taskOf(in), nil, badTask("decode cancel: %v", err))
	}
	if _, ok := s.tasks[cancel.Task]; !ok {
		return encodeDone(cancel.Task, nil, badTask("no task %q", cancel.Task))
	}
	return s.abort(cancel.Task, &wire.Error{Type: wire.ErrCanceled, Message: "the host canceled the task"})
}

// abort ends a task with err as its output: its effects fail with canceled
// and it runs to its end. A task id that names no task just gets err back.
func (s *Scheduler) abort(id string, err *wire.Error) []byte {
	t, ok := s.tasks[id]
	if !ok {
		return encodeDone(id, nil, err)
	}
	t.mu.Lock()
	if t.final == nil {
		t.final = err
	}
	t.cancelLocked()
	t.mu.Unlock()
	return s.wait(t)
}

// wait blocks until no goroutine of t runs, then returns t's next batch or,
// once every goroutine of t has ended, its output.
func (s *Scheduler) wait(t *Task) []byte {
	t.mu.Lock()
	for t.running > 0 {
		t.mu.Unlock()
		<-t.idle
		t.mu.Lock()
	}
	defer t.mu.Unlock()
	select { // a signal left from an earlier transition to idle
	case <-t.idle:
	default:
	}
	if t.live == 0 {
		delete(s.tasks, t.id)
		return t.outputLocked()
	}
	if len(t.pending) == 0 {
		// Every live goroutine waits in Group.Wait for another that waits
		// too: nothing can ever run again. End the task rather than trap.
		t.failLocked(&wire.Error{Type: wire.ErrAgent, Status: 500,
			Message: "deadlock: every goroutine of the run waits for another (Group.Wait called inside its own group?)"})
		delete(s.tasks, t.id)
		return t.outputLocked()
	}
	// The host holds the batch now; ids grow, so it stays sorted.
	t.outstanding, t.pending = t.pending, t.outstanding[:0]
	s.out = appendBatch(s.out[:0], t.id, t.outstanding)
	return s.out
}

// Task is one task in flight: the context its goroutines run with.
// It implements context.Context; its Done channel closes when the task is
// canceled or its handler returns.
type Task struct {
	id     string
	start  *wire.Start
	ctx    context.Context
	cancel context.CancelFunc

	// idle receives a value when running drops to zero.
	idle chan struct{}

	mu          sync.Mutex
	live        int // goroutines of the task that have not ended
	running     int // live goroutines that do not wait on an effect or a Group
	nextID      uint64
	pending     []*pending // effects not yet handed to the host
	outstanding []*pending // the batch the host holds, by id
	canceled    bool       // new effects fail at once

	observer func(any) // sees the task's events (SetObserver)

	result  json.RawMessage // the handler's result
	err     *wire.Error     // the handler's error
	failure *wire.Error     // the first panic of a goroutine of the task
	final   *wire.Error     // the output forced by cancel or a bad resume
}

type pending struct {
	effect   wire.Effect
	result   chan wire.Result
	answer   wire.Result // from the resume being checked
	answered bool
	posted   bool // issued with Post: no goroutine waits for the result

	// decoded receives the value from the resume (DecodeResumeInto) when
	// the waiter wants a fetch or read value: into fetch or read, from
	// which Perform copies it, so that a resume that turns out bad never
	// writes to the waiter's value. direct says the decode is the answer's.
	decoded   wirejson.Decoded
	decodedAt uint64 // Scheduler.resumes when decoded was handed out
	direct    bool
	fetch     wire.FetchValue
	read      wire.ReadValue
}

// release recycles a posted effect, which no goroutine recycles.
func (p *pending) release() {
	*p = pending{result: p.result}
	pendingPool.Put(p)
}

type taskKey struct{}

func newTask(start *wire.Start) *Task {
	ctx, cancel := context.WithCancel(context.Background())
	return &Task{
		id:     start.Task,
		start:  start,
		ctx:    ctx,
		cancel: cancel,
		idle:   make(chan struct{}, 1),
	}
}

// FromContext returns the task ctx belongs to, or nil outside a task.
func FromContext(ctx context.Context) *Task {
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}

// Start returns the input that started the task. It must not be modified.
func (t *Task) Start() *wire.Start { return t.start }

// Deadline implements context.Context: a task has none.
func (t *Task) Deadline() (deadline time.Time, ok bool) { return t.ctx.Deadline() }

// Done implements context.Context.
func (t *Task) Done() <-chan struct{} { return t.ctx.Done() }

// Err implements context.Context.
func (t *Task) Err() error { return t.ctx.Err() }

// Value implements context.Context; FromContext finds the task through it.
func (t *Task) Value(key any) any {
	if key == (taskKey{}) {
		return t
	}
	return t.ctx.Value(key)
}

func (t *Task) main(run RunFunc) {
	var (
		result   json.RawMessage
		err      *wire.Error
		returned bool
	)
	defer func() {
		if r := recover(); r != nil {
			err = Panicked(r)
		} else if !returned {
			err = &wire.Error{Type: wire.ErrAgent, Status: 500, Message: "the handler exited without returning (runtime.Goexit)"}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.result, t.err = result, err
		// Goroutines that outlive the handler belong to a finished run:
		// their effects fail as if the run had been canceled.
		t.cancelLocked()
		t.endLocked()
	}()
	result, err = run(t, t.start)
	returned = true
}

// SetObserver makes f see every event ctx's task emits (package event
// calls Observer before it posts one), in the emitting goroutine: the
// run's telemetry. f must be safe for concurrent use.
func SetObserver(ctx context.Context, f func(any)) {
	if t := FromContext(ctx); t != nil {
		t.mu.Lock()
		t.observer = f
		t.mu.Unlock()
	}
}

// Observer returns the function SetObserver set for ctx's task, or nil.
func Observer(ctx context.Context) func(any) {
	t := FromContext(ctx)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.observer
}

// Panicked turns a recovered panic value into the error a task ends with.
func Panicked(r any) *wire.Error {
	return &wire.Error{Type: wire.ErrAgent, Status: 500, Message: fmt.Sprintf("panic: %v", r)}
}

// Failure returns the error of the first panic recovered in a goroutine of
// ctx's task, or nil. A handler that waited for its goroutines uses it to
// record how the run really ended.
func Failure(ctx context.Context) *wire.Error {
	t := FromContext(ctx)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failure
}

func (t *Task) failLocked(err *wire.Error) {
	if t.failure == nil {
		t.failure = err
	}
}

// cancelLocked makes every effect of t, outstanding or new, fail with
// canceled, and cancels t's context.
func (t *Task) cancelLocked() {
	t.canceled = true
	t.cancel()
	canceled := &wire.Error{Type: wire.ErrCanceled, Message: "the task was canceled"}
	for _, batch := range [][]*pending{t.outstanding, t.pending} {
		for _, p := range batch {
			if p.posted {
				p.release()
				continue
			}
			t.wakeLocked()
			p.result <- wire.Result{ID: p.effect.ID, Error: canceled}
		}
	}
	t.outstanding, t.pending = nil, nil
}

// checkResultsLocked reports whether results answer exactly the batch the
// host holds, each effect once and none other, and files each answer with
// its effect.
func (t *Task) checkResultsLocked(results []wire.Result) *wire.Error {
	if len(results) != len(t.outstanding) {
		return badTask("%d results for a batch of %d effects", len(results), len(t.outstanding))
	}
	for _, r := range results {
		p := t.outstandingLocked(r.ID)
		if p == nil || p.answered {
			return badTask("result for effect %d, which is not in the batch or answered twice", r.ID)
		}
		p.answer, p.answered = r, true
	}
	return nil
}

// outstandingLocked finds effect id in the batch the host holds.
func (t *Task) outstandingLocked(id uint64) *pending {
	i, found := slices.BinarySearchFunc(t.outstanding, id, func(p *pending, id uint64) int { return cmp.Compare(p.effect.ID, id) })
	if !found {
		return nil
	}
	return t.outstanding[i]
}

func (t *Task) outputLocked() []byte {
	switch {
	case t.final != nil:
		return encodeDone(t.id, nil, t.final)
	case t.failure != nil:
		return encodeDone(t.id, nil, t.failure)
	case t.err != nil:
		return encodeDone(t.id, nil, t.err)
	case t.result == nil:
		return encodeDone(t.id, json.RawMessage("null"), nil)
	default:
		return encodeDone(t.id, t.result, nil)
	}
}

// blockLocked records that the calling goroutine is about to wait; the
// export waiting for the task wakes once no goroutine runs.
func (t *Task) blockLocked() {
	t.running--
	if t.running == 0 {
		select {
		case t.idle <- struct{}{}:
		default:
		}
	}
}

// wakeLocked counts a waiting goroutine as running again. It is called
// before the goroutine is released, so the count never reaches zero while
// that goroutine can still run.
func (t *Task) wakeLocked() { t.running++ }

// endLocked records that the calling goroutine has ended.
func (t *Task) endLocked() {
	t.live--
	t.blockLocked()
}

func badTask(format string, args ...any) *wire.Error {
	return &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf(format, args...)}
}

// taskOf finds the task id in an input that did not decode, so that even a
// bad_task answer names the task when it can.
func taskOf(in []byte) string {
	var v struct {
		Task string `json:"task"`
	}
	_ = json.Unmarshal(in, &v)
	return v.Task
}
