package anthropic

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var deltaEvent = []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there "}}`)

func TestFastDelta(t *testing.T) {
	for _, tc := range []struct {
		data string
		fast bool
	}{
		{string(deltaEvent), true},
		{`{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":\"\\u00e9\\ud83d\\ude00\\n\"}"}}`, true},
		{` { "index" : 12 , "type" : "content_block_delta" , "delta" : { "type" : "thinking_delta" , "thinking" : "é ✓" , "extra": [1, {"x": null}, true, -2.5e3] } } `, true},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}`, true},
		{`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}`, false},
		{`{"type":"content_block_delta","Index":1,"delta":{"type":"text_delta","text":"x"}}`, false},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","TEXT":"x"}}`, false},
		{`{"type":"content_block_delta","index":1,"index":2,"delta":{"type":"text_delta","text":"x"}}`, false},
		{`{"type":"content_block_delta","index":01,"delta":{}}`, false},
		{`{"type":"content_block_delta","index":1,"delta":{"text":null}}`, false},
		{`{"type":"content_block_delta","index":1,"delta":{"text":"\x"}}`, false},
		{`{"type":"content_block_delta","index":1,"delta":{"text":"a"}} x`, false},
		{"{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"text\":\"\xff\"}}", false},
	} {
		var fast event
		ok := fastDelta([]byte(tc.data), &fast)
		assert.Equal(t, tc.fast, ok, tc.data)
		if ok {
			var slow event
			require.NoError(t, json.Unmarshal([]byte(tc.data), &slow))
			assert.Equal(t, slow, fast, tc.data)
		}
	}
}

// FuzzFastDelta: whatever the fast path takes, encoding/json takes too and
// decodes the same.
func FuzzFastDelta(f *testing.F) {
	f.Add(string(deltaEvent))
	f.Add(`{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":\"\\u00e9\\ud83d\\ude00\\ud800\\n\"}"}}`)
	f.Add(`{"index":7,"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"x","k":[{"a":1e5},false,null]}}`)
	f.Fuzz(func(t *testing.T, data string) {
		var fast event
		if !fastDelta([]byte(data), &fast) {
			return
		}
		var slow event
		require.NoError(t, json.Unmarshal([]byte(data), &slow), "the fast path took %q", data)
		require.Equal(t, slow, fast, "%q", data)
	})
}

func BenchmarkDecodeDelta(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var ev event
			if !fastDelta(deltaEvent, &ev) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			var ev event
			if err := json.Unmarshal(deltaEvent, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
