package openai

import (
	"strings"

	"github.com/damperdev/damper/runtime/model/internal/jsonscan"
)

// fastChunk decodes a chunk of content or tool-call deltas, the bulk of a
// stream, into ch without reflection (encoding/json costs ~20 µs a chunk
// in wasm). It reports false for a chunk it does not take (usage, an
// error, a shape it does not know), which the caller then decodes with
// encoding/json: the result is the same either way (FuzzFastChunk).
func fastChunk(data []byte, ch *chunk) bool {
	s := jsonscan.New(data)
	var seen uint8
	s.Object(func(key string) bool {
		var bit uint8
		switch key {
		case "id":
			bit = 1
			ch.ID, _ = s.String()
		case "object":
			bit = 2
			ch.Object, _ = s.String()
		case "model":
			bit = 4
			ch.Model, _ = s.String()
		case "choices":
			bit = 8
			fastChoices(s, ch)
		case "usage":
			bit = 16
			if !s.Null() {
				return false
			}
		default:
			if foldsTo(key, "id", "object", "model", "choices", "usage", "error") {
				return false
			}
			s.Skip()
			return true
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	return s.End()
}

func fastChoices(s *jsonscan.Scanner, ch *chunk) {
	ch.Choices = []choice{} // [] is empty, not nil, as encoding/json has it
	s.Array(func() bool {
		ch.Choices = append(ch.Choices, choice{})
		c := &ch.Choices[len(ch.Choices)-1]
		var seen uint8
		s.Object(func(key string) bool {
			var bit uint8
			switch key {
			case "index":
				bit = 1
				c.Index, _ = s.Int()
			case "delta":
				bit = 2
				return once(&seen, bit) && fastDelta(s, c)
			case "finish_reason":
				bit = 4
				c.FinishReason = optString(s)
			default:
				if foldsTo(key, "index", "delta", "finish_reason") {
					return false
				}
				s.Skip()
				return true
			}
			return once(&seen, bit)
		})
		return true
	})
}

func fastDelta(s *jsonscan.Scanner, c *choice) bool {
	d := &c.Delta
	var seen uint8
	s.Object(func(key string) bool {
		var bit uint8
		switch key {
		case "content":
			bit = 1
			d.Content = optString(s)
		case "reasoning_content":
			bit = 2
			d.ReasoningContent = optString(s)
		case "refusal":
			bit = 4
			d.Refusal = optString(s)
		case "tool_calls":
			bit = 8
			if s.Null() {
				d.ToolCalls = nil
				break
			}
			d.ToolCalls = []toolCallDelta{}
			s.Array(func() bool {
				d.ToolCalls = append(d.ToolCalls, toolCallDelta{})
				return fastToolCall(s, &d.ToolCalls[len(d.ToolCalls)-1])
			})
		default:
			if foldsTo(key, "content", "reasoning_content", "refusal", "tool_calls") {
				return false
			}
			s.Skip()
			return true
		}
		return once(&seen, bit)
	})
	return !s.Failed()
}

func fastToolCall(s *jsonscan.Scanner, tc *toolCallDelta) bool {
	var seen uint8
	s.Object(func(key string) bool {
		var bit uint8
		switch key {
		case "index":
			bit = 1
			tc.Index, _ = s.Int()
		case "id":
			bit = 2
			tc.ID, _ = s.String()
		case "function":
			bit = 4
			var fseen uint8
			s.Object(func(key string) bool {
				switch key {
				case "name":
					tc.Function.Name, _ = s.String()
					return once(&fseen, 1)
				case "arguments":
					tc.Function.Arguments, _ = s.String()
					return once(&fseen, 2)
				}
				if foldsTo(key, "name", "arguments") {
					return false
				}
				s.Skip()
				return true
			})
		default:
			if foldsTo(key, "index", "id", "function") {
				return false
			}
			s.Skip()
			return true
		}
		return once(&seen, bit)
	})
	return !s.Failed()
}

// optString reads a string or null, as encoding/json fills a *string.
func optString(s *jsonscan.Scanner) *string {
	if s.Null() {
		return nil
	}
	v, _ := s.String()
	return &v
}

func once(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
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
