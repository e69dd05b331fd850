// Package harness runs a model with tools in durable, named sessions, and
// hands back typed values validated against their JSON Schema:
//
//	h, err := harness.New(ctx, harness.Config{Sandbox: sandbox.Empty(), Tools: []tool.Tool{labels}})
//	s, err := h.Session("default")
//	t, err := harness.Prompt[Triage](ctx, s, "Triage this issue:\n"+in.Title+"\n\n"+in.Body)
//
// A session's conversation is kept in the agent instance's storage and
// written after every model turn and every tool result, so it continues
// across runs, and across the loss of the module instance or the host: a
// run started again with the same run id continues each prompt from what
// was stored, never sending a completed model turn twice, and reports a
// tool call the loss interrupted to the model as interrupted (unless the
// tool is idempotent, which is run again).
//
// # The loop
//
// A prompt is model turns and tool calls until the model stops: the tools
// a turn calls run in parallel (their effects go to the host together),
// each result capped at 2,000 lines or 50 KB (the model is told when a
// result was cut), all results in the next message. Budgets bound a
// prompt's turns, tokens, wall time and cost (Budget). The model is the
// call's (WithModel), else the session's (Session.SetModel), else the
// agent's (Config.Model), else the host's (DAMPER_MODEL).
//
// # Typed results
//
// Prompt[T] and Skill[T] offer the model a finish tool whose arguments are
// T's schema (a T that is not a struct is wrapped as {"result": T}) and a
// give_up tool taking a reason. finish's arguments are validated against
// the schema and decoded strictly into T; when they do not fit, the model
// reads every problem with its JSON pointer and tries again, Config.Retries
// times (2 by default). A turn that calls neither tool gets one follow-up.
// A model without tools answers in a fenced JSON block instead
// (Config.Prompted), with the same validation and retries. A prompt that
// gets no valid result fails with a *ResultError, which a run answers as a
// 500 result_error with the reason, the last raw output and the problems.
//
// Schemas come from Go types by encoding/json's rules, with descriptions,
// enums and bounds from jsonschema struct tags in invopop/jsonschema's
// syntax (title, description, enum, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, maxLength, pattern, minItems, maxItems, and
// the jsonschema_description tag for text with commas):
//
//	type Triage struct {
//		Label    string `json:"label" jsonschema:"enum=bug,enum=feature,enum=question"`
//		Priority int    `json:"priority" jsonschema:"minimum=1,maximum=3,description=1 is the most urgent"`
//	}
//
// # Skills, AGENTS.md and subagents
//
// Skills (agentskills.io's SKILL.md with YAML frontmatter) come from
// Config.Skills and from .agents/skills/*/SKILL.md in the sandbox; the
// system prompt lists their names and descriptions, and the model loads
// one with activate_skill and its files with read_skill_resource. Skill[T]
// runs one by name with typed arguments. AGENTS.md in the sandbox's working
// directory joins the system prompt. Config.Subagents are offered through
// a task tool that runs a child session, at most Config.MaxDepth deep.
//
// # Compaction
//
// When a conversation nears the model's context window (the window less a
// reserve), its older turns are summarised by the model and the recent
// ones (about 8,000 tokens) kept; the same happens when the provider says
// the prompt overflows, and on Session.Compact.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
)

// Defaults.
const (
	// DefaultRetries is how many times a model may send an invalid result
	// again before the prompt fails.
	DefaultRetries = 2
	// DefaultTurns is a prompt's turn budget when Budget.Turns is 0.
	DefaultTurns = 50
	// DefaultMaxDepth is how deep subagents nest when Config.MaxDepth is 0.
	DefaultMaxDepth = 4
	// MaxResultLines and MaxResultBytes cap a tool result as the model
	// reads it.
	MaxResultLines = 2000
	MaxResultBytes = 50 << 10
)

// Config is what a harness gives its sessions.
type Config struct {
	// Model is the agent's model, "provider/model"; empty uses the host's
	// (DAMPER_MODEL). A call's WithModel and a session's SetModel win.
	Model string
	// System is the system prompt: the agent's instructions.
	System string
	// Sandbox is the agent's sandbox (sandbox.Empty(), ...), whose
	// AGENTS.md joins the system prompt; the zero Spec means none. The
	// built-in tools over it are tools like any: tool.Builtins(spec).
	Sandbox sandbox.Spec
	// Tools are the tools the model may call: the agent's own, and the
	// built-ins it wants (tool.Builtins).
	Tools []tool.Tool
	// Skills are where the skills come from: SkillsFS (skills the agent
	// embeds) and SandboxSkills (.agents/skills of the sandbox).
	Skills []SkillSource
	// Subagents are offered to the model through the task tool.
	Subagents []Subagent
	// MaxDepth bounds how deep subagents nest; 0 is DefaultMaxDepth.
	MaxDepth int
	// Budget bounds each prompt.
	Budget Budget
	// Retries is how many invalid results a prompt lets the model correct;
	// 0 is DefaultRetries, negative none.
	Retries int
	// Prompted asks for typed results in a fenced JSON block rather than
	// through the finish tool, for models without tool use. No tool is
	// offered then.
	Prompted bool
	// MaxTokens caps each turn's output; 0 is the provider's default.
	MaxTokens int
	// Compaction says when conversations are summarised.
	Compaction Compaction
}

// Budget bounds one prompt. A prompt past a bound fails with a
// *BudgetError before its next model turn.
type Budget struct {
	// Turns is how many model turns; 0 is DefaultTurns.
	Turns int
	// Tokens is how many tokens the turns may use, prompt and output
	// together, summed over the turns; 0 is no bound.
	Tokens int64
	// Duration is how long the prompt may take, from its start, however
	// many runs it takes; 0 is no bound.
	Duration time.Duration
	// Cost is what the turns may cost in US dollars, by the price table
	// (model.PriceOf); 0 is no bound.
	Cost float64
}

// Compaction says when a session's older turns are summarised.
type Compaction struct {
	// Window is the model's context window in tokens; 0 looks the model
	// up in a small table of known models (128,000 for others).
	Window int
	// Reserve is kept free of the window: compaction happens once the
	// conversation passes Window - Reserve. 0 is a quarter of the window,
	// at most 20,000.
	Reserve int
	// Keep is how many of the most recent tokens stay as they were; 0 is
	// 8,000.
	Keep int
	// Off turns compaction off but on request (Session.Compact); a
	// provider's overflow error then ends the prompt.
	Off bool
}

// Harness gives the sessions of one run the agent's model, tools, skills
// and sandbox. Make one per run with New.
type Harness struct {
	run   *agent.Context
	cfg   Config
	sb    sandbox.Sandbox
	tools []tool.Tool
	depth int

	once     sync.Once
	extraErr error
	agentsMD string
	skills   []*skillEntry
}

// New returns the harness of ctx's run. It opens the sandbox, when cfg
// names one, and checks the tools' names and the agent's own skills (a
// skill that breaks the format is an error naming it).
func New(ctx *agent.Context, cfg Config) (*Harness, error) {
	h := &Harness{run: ctx, cfg: cfg, tools: cfg.Tools}
	if cfg.Sandbox.Kind != "" {
		sb, err := sandbox.Open(ctx, cfg.Sandbox)
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		h.sb = sb
	}
	seen := map[string]bool{}
	for _, t := range h.tools {
		if reserved[t.Name()] {
			return nil, fmt.Errorf("harness: tool %q: the name is the harness's own", t.Name())
		}
		if seen[t.Name()] {
			return nil, fmt.Errorf("harness: two tools are called %q", t.Name())
		}
		seen[t.Name()] = true
	}
	for _, sa := range cfg.Subagents {
		if err := sa.check(); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	for _, src := range cfg.Skills {
		if src.strict {
			if _, err := src.load(ctx, nil); err != nil {
				return nil, fmt.Errorf("harness: %w", err)
			}
		}
	}
	return h, nil
}

// reserved are the harness's own tool names.
var reserved = map[string]bool{finishTool: true, giveUpTool: true, activateSkillTool: true, readSkillTool: true, taskTool: true}

// Sandbox is the harness's sandbox, nil without one.
func (h *Harness) Sandbox() sandbox.Sandbox { return h.sb }

// context reads what joins the system prompt, once per harness: the
// sandbox's AGENTS.md and the skills.
func (h *Harness) context(ctx context.Context) error {
	h.once.Do(func() {
		if h.sb != nil {
			md, err := h.sb.ReadText(ctx, "AGENTS.md")
			switch {
			case err == nil:
				h.agentsMD = md
			case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, sandbox.ErrNotText):
				h.extraErr = fmt.Errorf("read AGENTS.md: %w", err)
				return
			}
		}
		for _, src := range h.cfg.Skills {
			found, err := src.load(ctx, h.sb)
			if err != nil {
				h.extraErr = err
				return
			}
			for _, s := range found {
				if !h.hasSkill(s.Name) { // the first source wins
					h.skills = append(h.skills, s)
				}
			}
		}
	})
	return h.extraErr
}

func (h *Harness) hasSkill(name string) bool { return h.skill(name) != nil }

func (h *Harness) skill(name string) *skillEntry {
	for _, s := range h.skills {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// SessionInfo describes a stored session.
type SessionInfo struct {
	Name string
	// Model is the session's own model (SetModel), "" when it has none.
	Model    string
	Messages int
	Turns    int
	Usage    model.Usage
	Cost     float64
	Created  time.Time
	Updated  time.Time
}

// Sessions lists the agent instance's sessions, by name.
func (h *Harness) Sessions() ([]SessionInfo, error) { return listSessions(h.run) }

// DeleteSession removes the session name and its subagents' sessions.
// Removing a session that does not exist is not an error.
func (h *Harness) DeleteSession(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return deleteSession(h.run, name)
}

// Session returns the session name of the agent instance, made empty when
// there is none yet. Names follow the grammar of agent names: 1 to 128 of
// A-Z a-z 0-9 . _ -.
//
// Within a run, Session returns the same *Session for the same name. A
// session takes one prompt at a time.
func (h *Harness) Session(name string) (*Session, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return h.session(name, h.depth)
}

func (h *Harness) session(name string, depth int) (*Session, error) {
	rs := runStateOf(h.run)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if s, ok := rs.sessions[name]; ok {
		s.h = h // the latest harness of the run serves it
		return s, nil
	}
	s := &Session{h: h, name: name, depth: depth, rs: rs}
	rs.sessions[name] = s
	return s, nil
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > 128 || name == "." || name == ".." {
		return fmt.Errorf("harness: session name %q: want 1 to 128 of A-Z a-z 0-9 . _ -", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("harness: session name %q: want 1 to 128 of A-Z a-z 0-9 . _ -", name)
		}
	}
	return nil
}

// runState is what one execution of a run keeps: its sessions and how
// many prompts each has had, which is how a run started again with the
// same id finds its prompts' stored records.
type runState struct {
	mu       sync.Mutex
	sessions map[string]*Session
	prompts  map[string]int
}

var (
	runsMu sync.Mutex
	runs   = map[*sched.Task]*runState{}
)

func runStateOf(ctx *agent.Context) *runState {
	t := sched.FromContext(ctx)
	runsMu.Lock()
	defer runsMu.Unlock()
	if rs, ok := runs[t]; ok {
		return rs
	}
	rs := &runState{sessions: map[string]*Session{}, prompts: map[string]int{}}
	runs[t] = rs
	context.AfterFunc(ctx, func() {
		runsMu.Lock()
		delete(runs, t)
		runsMu.Unlock()
	})
	return rs
}

// modelName is the model a call uses: the call's, the session's, the
// agent's, the host's.
func (h *Harness) modelName(call, session string) (string, error) {
	for _, m := range []string{call, session, h.cfg.Model, instance.HostModel(h.run)} {
		if m != "" {
			return m, nil
		}
	}
	return "", errors.New("harness: no model: set Config.Model, or DAMPER_MODEL on the host (anthropic/claude-sonnet-4-5, openai/gpt-4.1, test/schema, ...)")
}

func (h *Harness) retries() int {
	switch {
	case h.cfg.Retries < 0:
		return 0
	case h.cfg.Retries == 0:
		return DefaultRetries
	}
	return h.cfg.Retries
}

func (h *Harness) maxDepth() int {
	if h.cfg.MaxDepth > 0 {
		return h.cfg.MaxDepth
	}
	return DefaultMaxDepth
}
