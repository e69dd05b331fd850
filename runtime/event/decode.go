package event

import (
	"encoding/json"
	"fmt"
)

// Decode decodes the data of an event of type t into its payload struct
// (the value, not a pointer: a *TurnFinish never comes back). Empty data
// is the payload's zero value. A type outside the set is an error.
func Decode(t Type, data json.RawMessage) (Payload, error) {
	switch t {
	case TypeRunStart:
		return decodeAs[RunStart](t, data)
	case TypeRunFinish:
		return decodeAs[RunFinish](t, data)
	case TypeRunError:
		return decodeAs[RunError](t, data)
	case TypeRunCancel:
		return decodeAs[RunCancel](t, data)
	case TypeTurnStart:
		return decodeAs[TurnStart](t, data)
	case TypeTurnFinish:
		return decodeAs[TurnFinish](t, data)
	case TypeTextDelta:
		return decodeAs[TextDelta](t, data)
	case TypeThinkingDelta:
		return decodeAs[ThinkingDelta](t, data)
	case TypeModelRetry:
		return decodeAs[ModelRetry](t, data)
	case TypeToolStart:
		return decodeAs[ToolStart](t, data)
	case TypeToolFinish:
		return decodeAs[ToolFinish](t, data)
	case TypeToolError:
		return decodeAs[ToolError](t, data)
	case TypeShellExec:
		return decodeAs[ShellExec](t, data)
	case TypeShellExit:
		return decodeAs[ShellExit](t, data)
	case TypePolicyAllow:
		return decodeAs[PolicyAllow](t, data)
	case TypePolicyDeny:
		return decodeAs[PolicyDeny](t, data)
	case TypePolicyReport:
		return decodeAs[PolicyReport](t, data)
	case TypeEgressAllow:
		return decodeAs[EgressAllow](t, data)
	case TypeEgressDeny:
		return decodeAs[EgressDeny](t, data)
	case TypeResultRetry:
		return decodeAs[ResultRetry](t, data)
	case TypeCompactionStart:
		return decodeAs[CompactionStart](t, data)
	case TypeCompactionFinish:
		return decodeAs[CompactionFinish](t, data)
	case TypeSubagentStart:
		return decodeAs[SubagentStart](t, data)
	case TypeSubagentFinish:
		return decodeAs[SubagentFinish](t, data)
	case TypeLog:
		return decodeAs[Log](t, data)
	}
	return nil, fmt.Errorf("event type %q is not one of damper's event types", t)
}

func decodeAs[P Payload](t Type, data json.RawMessage) (Payload, error) {
	var p P
	if len(data) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode %s data: %w", t, err)
	}
	return p, nil
}
