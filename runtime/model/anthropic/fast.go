package anthropic

import (
	"strings"

	"github.com/damperdev/damper/runtime/model/internal/jsonscan"
)

// fastDelta decodes a content_block_delta event, the bulk of a stream,
// into ev without reflection (encoding/json costs ~20 µs an event in
// wasm). It reports false for any other event or shape, which the caller
// then decodes with encoding/json: the result is the same either way
// (FuzzFastDelta).
func fastDelta(data []byte, ev *event) bool {
	s := jsonscan.New(data)
	var seen uint8
	once := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	s.Object(func(key string) bool {
		switch key {
		case "type":
			if !once(1) {
				return false
			}
			ev.Type, _ = s.String()
		case "index":
			if !once(2) {
				return false
			}
			ev.Index, _ = s.Int()
		case "delta":
			if !once(4) {
				return false
			}
			return fastBlockDelta(s, ev)
		default:
			if foldsTo(key, "type", "index", "delta", "message", "content_block", "usage", "error", "request_id") {
				return false
			}
			s.Skip()
		}
		return true
	})
	return s.End() && ev.Type == "content_block_delta" && ev.Delta != nil
}

func fastBlockDelta(s *jsonscan.Scanner, ev *event) bool {
	d := &struct {
		Type         string  `json:"type"`
		Text         string  `json:"text"`
		PartialJSON  string  `json:"partial_json"`
		Thinking     string  `json:"thinking"`
		Signature    string  `json:"signature"`
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}{}
	var seen uint8
	s.Object(func(key string) bool {
		var dst *string
		var bit uint8
		switch key {
		case "type":
			dst, bit = &d.Type, 1
		case "text":
			dst, bit = &d.Text, 2
		case "partial_json":
			dst, bit = &d.PartialJSON, 4
		case "thinking":
			dst, bit = &d.Thinking, 8
		case "signature":
			dst, bit = &d.Signature, 16
		case "stop_reason":
			dst, bit = &d.StopReason, 32
		default:
			if foldsTo(key, "type", "text", "partial_json", "thinking", "signature", "stop_reason", "stop_sequence") {
				return false
			}
			s.Skip()
			return true
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		*dst, _ = s.String()
		return true
	})
	ev.Delta = d
	return !s.Failed()
}

// foldsTo reports whether key names one of names in another case, which
// encoding/json would take for it: the fast path leaves those to it.
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}
