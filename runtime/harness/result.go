package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/internal/schema"
)

// The result tools a typed prompt offers.
const (
	finishTool = "finish"
	giveUpTool = "give_up"

	finishDescription = "Gives the final result. Call it once you have the answer: its arguments are the result, and must fit the schema."
	giveUpDescription = "Ends the task without a result. Call it only when the result cannot be given, with the reason."
)

var giveUpSchema = json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","description":"Why the result cannot be given"}},"required":["reason"],"additionalProperties":false}`)

// Prompt sends prompt to the model in session s and returns the model's
// result as a T, validated against T's schema and decoded strictly (see
// the package documentation). It fails with a *ResultError when the model
// gives no valid result: invalid after Config.Retries corrections, gave up,
// or no result at all.
func Prompt[T any](ctx context.Context, s *Session, prompt string, opts ...Option) (T, error) {
	var v T
	spec := resultSpecOf(reflect.TypeFor[T]())
	raw, err := s.prompt(ctx, prompt, spec, opts)
	if err == nil {
		err = spec.decode(raw, &v)
	}
	return v, err
}

// Prompt sends prompt to the model in the session and returns the text of
// its last answer, once it called no more tools.
func (s *Session) Prompt(ctx context.Context, prompt string, opts ...Option) (string, error) {
	raw, err := s.prompt(ctx, prompt, nil, opts)
	if err != nil {
		return "", err
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", fmt.Errorf("session %q: decode the stored answer: %w", s.name, err)
	}
	return text, nil
}

// resultSpec is what a typed prompt needs of its result type: the finish
// tool's schema and its validator.
type resultSpec struct {
	typ       reflect.Type
	schema    json.RawMessage // an object: T's, or {"result": T's}
	validator *schema.Validator
	wrapped   bool
	digest    string
}

var (
	specsMu     sync.Mutex
	resultSpecs = map[reflect.Type]*resultSpec{}
)

func resultSpecOf(t reflect.Type) *resultSpec {
	specsMu.Lock()
	defer specsMu.Unlock()
	if s, ok := resultSpecs[t]; ok {
		return s
	}
	var doc map[string]any
	if err := json.Unmarshal(schema.For(t), &doc); err != nil {
		panic("harness: decode a generated schema: " + err.Error()) // For writes JSON
	}
	delete(doc, "$schema")
	defs, _ := doc["$defs"].(map[string]any)
	if ref, ok := doc["$ref"].(string); ok && defs != nil { // a recursive struct: its definition at the top
		if def, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any); ok {
			top := map[string]any{"$defs": defs}
			for k, v := range def {
				top[k] = v
			}
			doc = top
		}
	}
	spec := &resultSpec{typ: t}
	if doc["type"] != "object" {
		delete(doc, "$defs")
		wrapped := map[string]any{"type": "object", "properties": map[string]any{"result": doc}, "required": []any{"result"}, "additionalProperties": false}
		if defs != nil {
			wrapped["$defs"] = defs
		}
		doc, spec.wrapped = wrapped, true
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("harness: encode a schema: " + err.Error())
	}
	spec.schema = b
	if spec.validator, err = schema.Compile(b); err != nil {
		panic("harness: compile a generated schema: " + err.Error())
	}
	spec.digest = digest(t.String(), string(b))
	resultSpecs[t] = spec
	return spec
}

// check validates finish's arguments and decodes them strictly, returning
// them (to store) or every problem.
func (r *resultSpec) check(input json.RawMessage) (json.RawMessage, []Problem) {
	var written string
	if json.Unmarshal(input, &written) == nil {
		return nil, []Problem{{Message: "the arguments are not a JSON object: " + fmt.Sprintf("%.200q", written)}}
	}
	if ps := r.validator.Validate(input); len(ps) > 0 {
		out := make([]Problem, len(ps))
		for i, p := range ps {
			out[i] = Problem(p)
		}
		return nil, out
	}
	v := reflect.New(r.typ)
	if err := r.decode(input, v.Interface()); err != nil {
		// The validator and the decoder agree (a test holds them to it);
		// this is for the types that decode themselves.
		return nil, []Problem{{Message: err.Error()}}
	}
	return input, nil
}

// decode decodes a stored result into ptr, a *T.
func (r *resultSpec) decode(raw json.RawMessage, ptr any) error {
	if r.wrapped {
		var w struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("decode the result: %w", err)
		}
		raw = w.Result
	}
	if err := schema.Decode(raw, ptr); err != nil {
		return fmt.Errorf("decode the result: %w", err)
	}
	return nil
}

func giveUpReason(input json.RawMessage) string {
	var in struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(input, &in) != nil || in.Reason == "" {
		return "(no reason given)"
	}
	return in.Reason
}

// Problem is one way a result breaks its schema: where, as a JSON pointer
// ("" for the whole result, "/items/0/name" inside it), and what is wrong.
type Problem struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

func (p Problem) String() string { return schema.Problem(p).String() }

// Reason is why a prompt got no result.
type Reason string

// Reasons of a ResultError.
const (
	// ReasonInvalid: the model's results did not fit the schema, after
	// every correction it was allowed.
	ReasonInvalid Reason = "invalid"
	// ReasonGaveUp: the model called give_up.
	ReasonGaveUp Reason = "gave_up"
	// ReasonNoResult: the model ended without calling finish, after a
	// reminder (or refused).
	ReasonNoResult Reason = "no_result"
)

// ResultError is a typed prompt that got no valid result. A run that
// returns it (or an error wrapping it) answers 500 result_error, its
// details holding reason, message, raw, problems and attempts.
type ResultError struct {
	Reason Reason `json:"reason"`
	// Message says what happened: the model's reason when it gave up.
	Message string `json:"message"`
	// Raw is the model's last output: finish's arguments, or its text.
	Raw string `json:"raw"`
	// Problems are what was wrong with the last result offered.
	Problems []Problem `json:"problems"`
	// Attempts is how many results the model offered.
	Attempts int `json:"attempts"`
}

func (e *ResultError) Error() string {
	b := fmt.Appendf(nil, "no result (%s): %s", e.Reason, e.Message)
	for _, p := range e.Problems {
		b = append(b, "; "...)
		b = append(b, p.String()...)
	}
	return string(b)
}

// As makes a *ResultError an *agent.Error of type result_error, which is
// how a run answers it.
func (e *ResultError) As(target any) bool {
	t, ok := target.(**agent.Error)
	if !ok {
		return false
	}
	d := *e
	if d.Problems == nil {
		d.Problems = []Problem{}
	}
	*t = &agent.Error{Type: "result_error", Status: 500, Message: e.Error(), Details: &d}
	return true
}

// BudgetError is a prompt stopped by a bound of its Budget.
type BudgetError struct {
	// Budget is the bound: turns, tokens, duration (seconds) or cost (US
	// dollars).
	Budget string  `json:"budget"`
	Limit  float64 `json:"limit"`
	Used   float64 `json:"used"`
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("the prompt reached its %s budget (%g, used %g)", e.Budget, e.Limit, e.Used)
}

// As makes a *BudgetError an *agent.Error of type budget_exceeded.
func (e *BudgetError) As(target any) bool {
	t, ok := target.(**agent.Error)
	if !ok {
		return false
	}
	*t = &agent.Error{Type: "budget_exceeded", Status: 500, Message: e.Error(), Details: e}
	return true
}
