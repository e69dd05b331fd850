package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/runtime/event"
)

// renderer shows a run's events to a person: a line for each thing worth
// reading (the model's text when its turn ends, tool calls with their
// arguments in short, shell commands and their exit codes, policy
// denials, result retries, compaction, subagents, logs, the end), and on a
// terminal a status line under them that a spinner keeps alive, with the
// elapsed time and the tokens so far.
type renderer struct {
	w       io.Writer
	tty     bool
	verbose bool // every policy decision, not only denials

	mu      sync.Mutex
	start   time.Time
	tokens  int64
	cost    float64
	doing   string                      // what the status line says is going on
	text    map[string]*strings.Builder // the model's text, by turn
	frame   int
	drawn   bool // the status line is on screen
	lines   int  // lines printed so far
	stopped bool
	done    chan struct{}
}

// spinner is the status line's animation.
var spinner = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

func newRenderer(w io.Writer, tty, verbose bool) *renderer {
	r := &renderer{w: w, tty: tty, verbose: verbose, start: time.Now(), doing: "starting", text: map[string]*strings.Builder{}, done: make(chan struct{})}
	if tty {
		go r.spin()
	}
	return r
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (r *renderer) spin() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.mu.Lock()
			r.frame++
			r.drawLocked()
			r.mu.Unlock()
		case <-r.done:
			return
		}
	}
}

// stop ends the status line; lines printed after it stand alone.
func (r *renderer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	close(r.done)
	r.clearLocked()
}

func (r *renderer) drawLocked() {
	if !r.tty || r.stopped {
		return
	}
	status := fmt.Sprintf("%c %s · %s", spinner[r.frame%len(spinner)], r.doing, elapsed(time.Since(r.start)))
	if r.tokens > 0 {
		status += " · " + tokens(r.tokens) + " tokens"
	}
	fmt.Fprintf(r.w, "\r\x1b[2K%s", status)
	r.drawn = true
}

func (r *renderer) clearLocked() {
	if r.drawn {
		io.WriteString(r.w, "\r\x1b[2K")
		r.drawn = false
	}
}

// linef prints one line above the status line.
func (r *renderer) linef(format string, args ...any) {
	r.clearLocked()
	fmt.Fprintf(r.w, format+"\n", args...)
	r.lines++
	r.drawLocked()
}

// event renders one event.
func (r *renderer) event(e event.Envelope) {
	p, err := e.Payload()
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch p := p.(type) {
	case event.RunStart:
		if p.Attempt > 1 {
			r.linef("run %s started again (attempt %d)", e.Run, p.Attempt)
		}
		r.doing = "running"
	case event.TurnStart:
		r.doing = "thinking (" + p.Model + ")"
	case event.ThinkingDelta:
		r.doing = "thinking"
	case event.TextDelta:
		b := r.text[e.Turn]
		if b == nil {
			b = &strings.Builder{}
			r.text[e.Turn] = b
		}
		b.WriteString(p.Text)
		r.doing = "writing"
	case event.TurnFinish:
		u := p.Usage
		r.tokens += u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.OutputTokens
		r.cost += p.Cost
		if b := r.text[e.Turn]; b != nil && strings.TrimSpace(b.String()) != "" {
			for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				r.linef("  %s", l)
			}
		}
		delete(r.text, e.Turn)
		if p.ErrorType != "" {
			r.linef("✗ %s failed: %s: %s", p.Model, p.ErrorType, p.Error)
		}
	case event.ToolStart:
		r.linef("▸ %s %s", p.Tool, short(string(p.Args), 100))
		r.doing = "running " + p.Tool
	case event.ToolFinish:
		r.doing = "running"
	case event.ToolError:
		r.linef("✗ %s failed: %s", p.Tool, short(p.Message, 200))
	case event.ShellExec:
		r.linef("  $ %s", short(p.Command, 120))
	case event.ShellExit:
		mark := "✓"
		if p.ExitCode != 0 || p.TimedOut {
			mark = "✗"
		}
		what := fmt.Sprintf("exit %d", p.ExitCode)
		if p.TimedOut {
			what = "timed out"
		}
		r.linef("  %s %s (%s)", mark, what, elapsed(time.Duration(p.DurationMs)*time.Millisecond))
	case event.PolicyDeny:
		r.linef("✗ policy denied %s %s (service %s, %s)", p.Method, p.URL, orNone(p.Service), reason(p.Decision))
	case event.PolicyReport:
		r.linef("! policy would deny %s %s (service %s, %s): report mode sent it", p.Method, p.URL, orNone(p.Service), reason(p.Decision))
	case event.PolicyAllow:
		if r.verbose {
			r.linef("  policy allowed %s %s (service %s)", p.Method, p.URL, p.Service)
		}
	case event.EgressDeny:
		r.linef("✗ sandbox egress denied %s %s (service %s, %s)", p.Method, p.URL, orNone(p.Service), reason(p.Decision))
	case event.EgressAllow:
		if r.verbose {
			r.linef("  sandbox egress allowed %s %s", p.Method, p.URL)
		}
	case event.ResultRetry:
		r.linef("↻ the result did not validate (attempt %d): %s", p.Attempt, strings.Join(p.Problems, "; "))
	case event.CompactionStart:
		r.linef("… compacting the conversation (%s tokens)", tokens(p.Tokens))
	case event.CompactionFinish:
		r.linef("  compacted: %s → %s tokens", tokens(p.TokensBefore), tokens(p.TokensAfter))
	case event.SubagentStart:
		r.linef("▸ subagent %s (depth %d)", p.Name, p.Depth)
	case event.SubagentFinish:
		if p.Error != "" {
			r.linef("✗ subagent %s failed: %s", p.Name, p.Error)
		} else {
			r.linef("  subagent %s done (%s)", p.Name, elapsed(time.Duration(p.DurationMs)*time.Millisecond))
		}
	case event.Log:
		r.linef("%s %s%s", p.Level, p.Message, attrs(p.Attrs))
	case event.RunFinish:
		// A run that showed nothing ends as quietly: its result says it all.
		if r.lines > 0 || r.tokens > 0 {
			r.linef("✓ done in %s%s", elapsed(time.Duration(p.DurationMs)*time.Millisecond), spendText(p.Usage, p.Cost))
		}
	case event.RunError:
		r.linef("✗ failed: %s: %s", p.ErrorType, p.Message)
	case event.RunCancel:
		r.linef("✗ canceled (%s): %s", p.Reason, p.Message)
	}
	r.drawLocked()
}

func reason(d event.Decision) string {
	s := d.Reason
	if d.Rule != "" {
		s += ", rule " + d.Rule
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func spendText(u event.Usage, cost float64) string {
	n := u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.OutputTokens
	if n == 0 && cost == 0 {
		return ""
	}
	s := " · " + tokens(n) + " tokens"
	if cost > 0 {
		s += fmt.Sprintf(" · $%.4f", cost)
	}
	return s
}

// attrs writes a log record's attributes as " k=v k=v", keys sorted.
func attrs(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := string(m[k])
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			v = s
		}
		fmt.Fprintf(&b, " %s=%s", k, short(v, 80))
	}
	return b.String()
}

// short cuts s to n characters on one line.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func elapsed(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func tokens(n int64) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.1fk", float64(n)/1000)
}
