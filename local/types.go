package local

import (
	"encoding/json"

	"github.com/damperdev/damper/internal/wire"
)

// Error is how a run failed, as the HTTP API answers it (docs/http.md):
// a machine-readable Type (invalid_payload, agent_error, module_trap, …),
// a Message for people, and the HTTP Status to answer with.
type Error struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Status  int    `json:"-"`
	// Details is the guest's error.details, when it sent any (a
	// result_error's reason, raw output and problems).
	Details json.RawMessage `json:"details,omitempty"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Manifest describes a module: the ABI version it speaks and its agents.
type Manifest struct {
	ABI    int         `json:"abi"`
	Agents []AgentInfo `json:"agents"`
}

// AgentInfo is one agent of a module: the JSON Schemas of its payload and
// its result, and its policy (the policy.Policy JSON, which names secrets,
// never holds their values), when it has one.
type AgentInfo struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Policy json.RawMessage `json:"policy,omitempty"`
}

func manifestOf(m wire.Manifest) Manifest {
	out := Manifest{ABI: m.ABI, Agents: make([]AgentInfo, len(m.Agents))}
	for i, a := range m.Agents {
		out.Agents[i] = AgentInfo(a)
	}
	return out
}

// newError is a host error with its status.
func newError(status int, typ, msg string) *Error {
	return &Error{Type: typ, Message: msg, Status: status}
}

// errorOf is the Error of a guest's failure; no status means 500.
func errorOf(e *wire.Error) *Error {
	status := e.Status
	if status == 0 {
		status = 500
	}
	return &Error{Type: e.Type, Message: e.Message, Status: status, Details: e.Details}
}
