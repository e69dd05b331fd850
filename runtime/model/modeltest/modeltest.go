// Package modeltest is the provider "test": models for testing an agent's
// plumbing with no provider, no key and no network, natively (agenttest)
// and in a module under either host.
//
//   - "test/schema" (Schema) calls every tool it is offered once, with
//     arguments generated from the tool's JSON Schema, then the result
//     tool "finish" with a value generated from its schema, or answers
//     text when no "finish" is offered.
//   - A FunctionModel is scripted turn by turn by a Go function; Register
//     names one "test/NAME", so that a module can select it by name
//     (DAMPER_MODEL=test/NAME) as it would a real model.
//
// "finish" and "give_up" are the harness's result tools: finish's input
// schema is the result type's (a type that is not an object is wrapped
// as {"result": T}), and give_up takes {"reason": string}. The schema
// model never calls give_up, and calls no other tool after finish.
//
// Import the package (for its side effect, if nothing else) to register
// the provider:
//
//	import _ "github.com/damperdev/damper/runtime/model/modeltest"
package modeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/damperdev/damper/runtime/model"
)

// Name is the provider's registered name.
const Name = "test"

// The harness's result tools, which the schema model treats apart.
const (
	FinishTool = "finish"
	GiveUpTool = "give_up"
)

func init() {
	model.Register(Name, open)
}

var (
	mu        sync.RWMutex
	functions = map[string]FunctionModel{}
)

// Register makes f the model "test/NAME". It panics on "schema", an empty
// name, a nil f, or a name taken.
func Register(name string, f FunctionModel) {
	if name == "" || name == "schema" || f == nil {
		panic(fmt.Sprintf("modeltest: cannot register %q", name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := functions[name]; dup {
		panic(fmt.Sprintf("modeltest: test/%s registered twice", name))
	}
	functions[name] = f
}

func open(id string, _ model.Env) (model.Model, error) {
	if id == "schema" {
		return Schema(), nil
	}
	mu.RLock()
	f := functions[id]
	mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("no test model %q: test/schema, or one registered with modeltest.Register", id)
	}
	return named{f: f, name: id}, nil
}

// FunctionModel is a model scripted by a Go function: each Turn calls it
// with the request, and its response is the turn's. The response may
// leave out what a script does not care about: the role (assistant), the
// stop reason (tool_use when the message calls tools, else end_turn), the
// provider ("test") and the model ("function"). Its message is streamed
// as deltas before Turn returns.
//
// An error is returned as it is: a *model.Error of a transient kind is
// retried by a model from model.Open, so a script can test retries.
type FunctionModel func(req *model.Request) (*model.Response, error)

// Turn runs one turn of the script.
func (f FunctionModel) Turn(ctx context.Context, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	return turn(ctx, f, "function", req, onDelta)
}

type named struct {
	f    FunctionModel
	name string
}

func (n named) Turn(ctx context.Context, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	return turn(ctx, n.f, n.name, req, onDelta)
}

func turn(ctx context.Context, f FunctionModel, name string, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &model.Error{Kind: model.KindCanceled, Provider: Name, Message: "the run was canceled", Err: err}
	}
	resp, err := f(req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, &model.Error{Kind: model.KindBadResponse, Provider: Name, Message: "the function returned no response and no error"}
	}
	r := *resp
	r.Message.Content = append([]model.Part(nil), resp.Message.Content...)
	if r.Message.Role == "" {
		r.Message.Role = model.RoleAssistant
	}
	if r.StopReason == "" {
		r.StopReason = model.StopEndTurn
		if len(r.Message.ToolUses()) > 0 {
			r.StopReason = model.StopToolUse
		}
	}
	if r.RawStopReason == "" {
		r.RawStopReason = string(r.StopReason)
	}
	if r.Provider == "" {
		r.Provider = Name
	}
	if r.Model == "" {
		r.Model = name
	}
	stream(&r.Message, onDelta)
	return &r, nil
}

// stream sends m's parts as the deltas a provider would have streamed.
func stream(m *model.Message, onDelta func(model.Delta)) {
	if onDelta == nil {
		return
	}
	for i, p := range m.Content {
		switch p.Type {
		case model.PartText:
			onDelta(model.Delta{Type: model.DeltaText, Index: i, Text: p.Text})
		case model.PartThinking:
			onDelta(model.Delta{Type: model.DeltaThinking, Index: i, Text: p.Text})
		case model.PartToolUse:
			onDelta(model.Delta{Type: model.DeltaToolUse, Index: i, ID: p.ID, Name: p.Name})
			onDelta(model.Delta{Type: model.DeltaToolInput, Index: i, Text: string(p.Input)})
		}
	}
}

// Text is a response whose message is one text part.
func Text(s string) *model.Response {
	return &model.Response{Message: model.Message{Role: model.RoleAssistant, Content: []model.Part{model.Text(s)}}}
}

// Call is a response whose message calls tool name with input, encoded as
// JSON (a json.RawMessage as it is), with a call id unique in the process.
// It panics if input does not encode.
func Call(name string, input any) *model.Response {
	raw, ok := input.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(input); err != nil {
			panic(fmt.Sprintf("modeltest.Call %s: %v", name, err))
		}
	}
	return &model.Response{Message: model.Message{Role: model.RoleAssistant,
		Content: []model.Part{model.ToolUse(fmt.Sprintf("call_%s_%d", name, callSeq.Add(1)), name, raw)}}}
}

var callSeq atomic.Uint64
