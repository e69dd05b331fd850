package modeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/damperdev/damper/runtime/model"
)

// Schema returns the model "test/schema". It decides each turn from the
// request alone, so it needs no state and survives restarts:
//
//  1. Every offered tool but finish and give_up that no assistant message
//     of the conversation has called yet is called now, all in one turn
//     (parallel calls), with arguments from Value of its input schema.
//  2. Then, when finish is offered, it calls finish with a value of its
//     schema (again after an error result, as a model retries).
//  3. Otherwise it answers text: "test/schema called: NAMES" (or "test/schema
//     answered" when it called nothing).
//
// ToolChoice is obeyed: none answers text, a named tool is called, any
// calls finish (or the first tool) when step 1 has nothing left. Usage
// counts a token per 4 bytes of the request and of the answer. A schema
// Value cannot satisfy is an invalid_request error naming the tool.
func Schema() model.Model { return schemaModel{} }

type schemaModel struct{}

func (schemaModel) Turn(ctx context.Context, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &model.Error{Kind: model.KindCanceled, Provider: Name, Message: "the run was canceled", Err: err}
	}
	called := map[string]bool{}
	var names []string
	turns := 0
	for _, m := range req.Messages {
		if m.Role != model.RoleAssistant {
			continue
		}
		turns++
		for _, p := range m.ToolUses() {
			if !called[p.Name] {
				names = append(names, p.Name)
			}
			called[p.Name] = true
		}
	}
	offered := map[string]*model.ToolSpec{}
	for i := range req.Tools {
		offered[req.Tools[i].Name] = &req.Tools[i]
	}

	var calls []*model.ToolSpec
	switch req.ToolChoice.Mode {
	case model.ToolNone:
	case model.ToolName:
		t := offered[req.ToolChoice.Name]
		if t == nil {
			return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: Name, Message: fmt.Sprintf("tool_choice names %q, which is not offered", req.ToolChoice.Name)}
		}
		calls = []*model.ToolSpec{t}
	default:
		for i := range req.Tools {
			t := &req.Tools[i]
			if t.Name != FinishTool && t.Name != GiveUpTool && !called[t.Name] {
				calls = append(calls, t)
			}
		}
		if len(calls) == 0 {
			if t := offered[FinishTool]; t != nil {
				calls = []*model.ToolSpec{t}
			} else if req.ToolChoice.Mode == model.ToolAny && len(req.Tools) > 0 {
				calls = []*model.ToolSpec{&req.Tools[0]}
			}
		}
	}

	resp := &model.Response{Provider: Name, Model: "schema", Message: model.Message{Role: model.RoleAssistant}}
	out := 0
	for i, t := range calls {
		input, err := Value(t.InputSchema)
		if err != nil {
			return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: Name, Message: fmt.Sprintf("tool %s: no value for its input schema", t.Name), Err: err}
		}
		id := fmt.Sprintf("toolu_test_%d_%d", turns+1, i+1)
		resp.Message.Content = append(resp.Message.Content, model.ToolUse(id, t.Name, input))
		out += len(t.Name) + len(input)
	}
	if len(calls) > 0 {
		resp.StopReason = model.StopToolUse
	} else {
		text := "test/schema answered"
		if len(names) > 0 {
			text = "test/schema called: " + strings.Join(names, ", ")
		}
		resp.Message.Content = []model.Part{model.Text(text)}
		resp.StopReason = model.StopEndTurn
		out += len(text)
	}
	resp.RawStopReason = string(resp.StopReason)
	in, _ := json.Marshal(req)
	resp.Usage = model.Usage{InputTokens: int64(len(in)/4 + 1), OutputTokens: int64(out/4 + 1)}
	stream(&resp.Message, onDelta)
	return resp, nil
}
