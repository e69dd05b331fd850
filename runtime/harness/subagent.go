package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/internal/schema"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/tool"
)

const taskTool = "task"

// Subagent is a named helper the model can hand a task to with the task
// tool: a child session with its own instructions, model and tools, whose
// answer (its final text, or its typed result as JSON) is the tool's
// result. A child session belongs to its parent: DeleteSession removes
// both.
type Subagent struct {
	// Name is what the model calls it by: 1 to 64 of a-z A-Z 0-9 _ -.
	Name string
	// Description tells the model what the subagent is for.
	Description string
	// Instructions are its system prompt.
	Instructions string
	// Model is its model, "provider/model"; empty is the parent's.
	Model string
	// Tools are its tools; nil gives it the parent's.
	Tools []tool.Tool
	// Result, when set, is a value of the type of its result: the child
	// gives a typed result, validated like Prompt's, and the parent reads
	// it as JSON.
	Result any
}

func (sa Subagent) check() error {
	if !tool.ValidName(sa.Name) {
		return fmt.Errorf("subagent name %q: want 1 to 64 of a-z A-Z 0-9 _ -", sa.Name)
	}
	if strings.TrimSpace(sa.Description) == "" {
		return fmt.Errorf("subagent %q: no description: the model chooses subagents by it", sa.Name)
	}
	return nil
}

type taskIn struct {
	Subagent string `json:"subagent" jsonschema:"description=The subagent's name"`
	Prompt   string `json:"prompt" jsonschema:"description=The task: everything the subagent needs to know\\, as it sees nothing else of this conversation,minLength=1"`
}

// taskTool is the task tool's description and schema; the harness runs
// its calls itself (internal), as a call names its child session.
func (h *Harness) taskTool() tool.Tool {
	b := []byte("Hands a task to a subagent, which works on it in a conversation of its own and answers with its result. The subagents:")
	for _, sa := range h.cfg.Subagents {
		b = fmt.Appendf(b, "\n- %s: %s", sa.Name, sa.Description)
	}
	return tool.New(taskTool, string(b), func(*agent.Context, taskIn) (string, error) {
		return "", errors.New("the task tool runs in the harness") // internal handles its calls
	})
}

// internal is the handler of a tool the harness runs itself, with the
// call: the task tool.
func (h *Harness) internal(c *call, name string) (func(model.Part) (string, error), bool) {
	if name != taskTool || len(h.cfg.Subagents) == 0 {
		return nil, false
	}
	return func(u model.Part) (string, error) {
		var in taskIn
		if err := schema.Decode(u.Input, &in); err != nil {
			return "", fmt.Errorf("invalid arguments: %w", err)
		}
		return h.runTask(c, u.ID, in)
	}, true
}

func (h *Harness) runTask(c *call, callID string, in taskIn) (string, error) {
	var sa *Subagent
	names := make([]string, len(h.cfg.Subagents))
	for i := range h.cfg.Subagents {
		names[i] = h.cfg.Subagents[i].Name
		if h.cfg.Subagents[i].Name == in.Subagent {
			sa = &h.cfg.Subagents[i]
		}
	}
	if sa == nil {
		return "", fmt.Errorf("there is no subagent %q; the subagents are: %s", in.Subagent, strings.Join(names, ", "))
	}
	depth := c.s.depth + 1
	if depth > h.maxDepth() {
		return "", fmt.Errorf("subagents nest at most %d deep: do this task yourself", h.maxDepth())
	}
	cfg := h.cfg
	cfg.System, cfg.Model = sa.Instructions, sa.Model
	if cfg.Model == "" {
		cfg.Model = c.name
	}
	child := &Harness{run: h.run, cfg: cfg, sb: h.sb, tools: h.tools, depth: depth}
	if sa.Tools != nil {
		child.tools = sa.Tools
	}
	child.once.Do(func() {}) // the parent's AGENTS.md and skills
	child.agentsMD, child.skills = h.agentsMD, h.skills

	name := childName(c.s.name, callID)
	cs, err := child.session(name, depth)
	if err != nil {
		return "", err
	}
	began := time.Now()
	emit(c.ctx, c.s.name, turnID(c.st.Turns), callID, event.SubagentStart{Name: sa.Name, Session: name, Depth: depth})
	var spec *resultSpec
	if sa.Result != nil {
		spec = resultSpecOf(reflect.TypeOf(sa.Result))
	}
	raw, err := cs.prompt(c.ctx, in.Prompt, spec, nil)
	if err != nil {
		emit(c.ctx, c.s.name, turnID(c.st.Turns), callID, event.SubagentFinish{Name: sa.Name, Session: name, DurationMs: sinceMs(began), Error: err.Error()})
		return "", fmt.Errorf("subagent %s failed: %w", sa.Name, err)
	}
	emit(c.ctx, c.s.name, turnID(c.st.Turns), callID, event.SubagentFinish{Name: sa.Name, Session: name, DurationMs: sinceMs(began)})
	if spec == nil {
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", err
		}
		return text, nil
	}
	if spec.wrapped {
		var w struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &w); err == nil {
			raw = w.Result
		}
	}
	return string(raw), nil
}

// childName names the session of a task call: the parent's name, "/", and
// the call's id in the session names' alphabet.
func childName(parent, callID string) string {
	var b []byte
	for _, c := range []byte(callID) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			b = append(b, c)
		}
	}
	id := string(b)
	if id == "" || len(id) > 64 {
		id = digest(callID)
	}
	return parent + "/task-" + id
}
