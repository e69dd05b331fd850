// Package tool is the tools a model calls in a harness session: custom
// tools made from a Go function with New, and the built-ins over a
// sandbox's FS and Shell (Bash, Read, Write, Edit, Glob, Grep).
//
// A tool's argument schema is generated from its input type, with
// descriptions, enums and bounds from jsonschema struct tags:
//
//	type LabelsIn struct {
//		Repo string `json:"repo" jsonschema:"description=owner/name of the repository"`
//	}
//	labels := tool.New("labels", "Lists the labels a repository uses.",
//		func(ctx *agent.Context, in LabelsIn) ([]string, error) { ... })
//
// The model's arguments are validated against the schema and decoded
// strictly before the function runs; a problem with them, and the
// function's error, go back to the model as the tool's error, and never
// end the run.
package tool

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/internal/schema"
)

// Tool is a function a model may call. Its zero value is not a tool: make
// one with New, or use a built-in.
type Tool struct {
	t *spec
}

type spec struct {
	name, description string
	idempotent        bool
	input             reflect.Type
	call              func(ctx *agent.Context, input json.RawMessage) (string, error)

	// The schema and its validator are made at the first use, not when
	// the tool is made: tools are package variables, built in init, which
	// every module instance runs at its start.
	once      sync.Once
	schema    json.RawMessage
	validator *schema.Validator
}

// New returns the tool name, described to the model by description, that
// runs fn. In must be a struct: its JSON fields are the tool's arguments
// (a field without omitempty is required), and its jsonschema tags add
// descriptions, enums and bounds (invopop/jsonschema's syntax; see the
// package documentation of runtime/harness). Out is what the model reads:
// a string as it is, anything else as JSON.
//
// New panics when name is not 1 to 64 of a-z A-Z 0-9 _ - (what providers
// accept), or In is not a struct: both are mistakes in the agent's code.
func New[In, Out any](name, description string, fn func(ctx *agent.Context, in In) (Out, error)) Tool {
	if fn == nil {
		panic(fmt.Sprintf("tool %q: nil function", name))
	}
	in := reflect.TypeFor[In]()
	if in.Kind() != reflect.Struct {
		panic(fmt.Sprintf("tool %q: its input type %s is not a struct", name, in))
	}
	return newTool(name, description, in, func(ctx *agent.Context, raw json.RawMessage) (string, error) {
		var v In
		if err := schema.Decode(raw, &v); err != nil {
			return "", &InputError{Problems: []Problem{{Message: err.Error()}}}
		}
		out, err := fn(ctx, v)
		if err != nil {
			return "", err
		}
		return Text(out)
	})
}

func newTool(name, description string, in reflect.Type, call func(*agent.Context, json.RawMessage) (string, error)) Tool {
	if !ValidName(name) {
		panic(fmt.Sprintf("tool name %q: want 1 to 64 of a-z A-Z 0-9 _ -", name))
	}
	return Tool{t: &spec{name: name, description: description, input: in, call: call}}
}

// ValidName reports whether name is a tool name providers accept: 1 to 64
// of a-z A-Z 0-9 _ -.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Text is how a tool's result reads to the model: a string or []byte as
// it is, anything else as its JSON.
func Text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode the result: %w", err)
	}
	return string(b), nil
}

// Name is the name the model calls the tool by.
func (t Tool) Name() string { return t.t.name }

// Description is what the model is told the tool does.
func (t Tool) Description() string { return t.t.description }

// Idempotent returns the tool marked as safe to run again with the same
// arguments. When a run is lost while such a tool runs, the harness runs
// the call again as the run resumes; any other tool's call is reported to
// the model as interrupted, since it may or may not have taken effect.
func (t Tool) Idempotent() Tool {
	c := &spec{name: t.t.name, description: t.t.description, idempotent: true, input: t.t.input, call: t.t.call}
	return Tool{t: c}
}

// IsIdempotent reports whether the tool was marked Idempotent.
func (t Tool) IsIdempotent() bool { return t.t.idempotent }

// Schema is the JSON Schema of the tool's arguments, an object.
func (t Tool) Schema() json.RawMessage {
	t.t.init()
	return t.t.schema
}

func (s *spec) init() {
	s.once.Do(func() {
		var m map[string]any
		if err := json.Unmarshal(schema.For(s.input), &m); err != nil {
			panic("tool: decode a generated schema: " + err.Error()) // For writes JSON: cannot happen
		}
		delete(m, "$schema") // providers take the schema of an object, not a document
		b, err := json.Marshal(m)
		if err != nil {
			panic("tool: encode a schema: " + err.Error())
		}
		s.schema = b
		if s.validator, err = schema.Compile(b); err != nil {
			panic("tool: compile a generated schema: " + err.Error())
		}
	})
}

// Call validates input against the tool's schema, decodes it and runs the
// tool. Arguments that do not fit are an *InputError listing every
// problem; the tool's own failure is its error. Both are for the model to
// read (the harness sends them back as the tool's error).
func (t Tool) Call(ctx *agent.Context, input json.RawMessage) (string, error) {
	t.t.init()
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	var written string
	if json.Unmarshal(input, &written) == nil {
		// The provider's way of passing on arguments that were not JSON.
		return "", &InputError{Problems: []Problem{{Message: "the arguments are not a JSON object: " + quoteShort(written)}}}
	}
	if ps := t.t.validator.Validate(input); len(ps) > 0 {
		e := &InputError{}
		for _, p := range ps {
			e.Problems = append(e.Problems, Problem(p))
		}
		return "", e
	}
	return t.t.call(ctx, input)
}

func quoteShort(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Problem is one way a value breaks a schema: where, as a JSON pointer
// ("" for the whole value, "/items/0/name" inside it), and what is wrong.
type Problem struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

func (p Problem) String() string { return schema.Problem(p).String() }

// InputError is a tool call whose arguments do not fit the tool's schema.
type InputError struct {
	Problems []Problem
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString("invalid arguments:")
	for _, p := range e.Problems {
		b.WriteString("\n- ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrUnknown is the error of a call of a tool the session does not have.
var ErrUnknown = errors.New("unknown tool")
