package sched

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// The outputs are written by hand rather than with encoding/json: an
// effect's args are JSON already (encoded once by Perform), json.Marshal
// of a json.RawMessage would scan and copy them again on every round trip,
// and encoding/json is slow in wasm (see wirejson).

// appendBatch appends the output of a task waiting on batch to b.
func appendBatch(b []byte, task string, batch []*pending) []byte {
	n := 32 + len(task)
	for _, p := range batch {
		n += 40 + len(p.effect.Type) + len(p.effect.Args)
	}
	b = slices.Grow(b, n)
	b = append(b, `{"task":`...)
	b = wirejson.AppendString(b, task)
	b = append(b, `,"effects":[`...)
	for i, p := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendUint(b, p.effect.ID, 10)
		b = append(b, `,"type":`...)
		b = wirejson.AppendString(b, p.effect.Type)
		if len(p.effect.Args) > 0 {
			b = append(b, `,"args":`...)
			b = append(b, p.effect.Args...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// encodeDone writes a finished task's output: result when err is nil.
func encodeDone(task string, result json.RawMessage, err *wire.Error) []byte {
	b := make([]byte, 0, 48+len(task)+len(result))
	b = append(b, `{"task":`...)
	b = wirejson.AppendString(b, task)
	b = append(b, `,"done":true`...)
	if err != nil {
		b = append(b, `,"error":{"type":`...)
		b = wirejson.AppendString(b, err.Type)
		b = append(b, `,"message":`...)
		b = wirejson.AppendString(b, err.Message)
		if err.Status != 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(err.Status), 10)
		}
		if len(err.Details) > 0 {
			b = append(b, `,"details":`...)
			b = append(b, err.Details...)
		}
		return append(b, "}}"...)
	}
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}
