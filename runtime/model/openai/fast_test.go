package openai

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var contentChunk = []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"obfuscation":"ab"}`)

func TestFastChunk(t *testing.T) {
	for _, tc := range []struct {
		data string
		fast bool
	}{
		{string(contentChunk), true},
		{`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`, true},
		{`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}`, true},
		{`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"a\":\"\\u00e9\"}"}}]}}],"usage":null}`, true},
		{`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, true},
		{`{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`, false},
		{`{"error":{"message":"x","type":"server_error"}}`, false},
		{`{"id":"c","Choices":[]}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"Content":"x"}}]}`, false},
		{`{"id":"c","choices":null}`, false},
		{`{"id":"c","id":"d"}`, false},
	} {
		var fast chunk
		ok := fastChunk([]byte(tc.data), &fast)
		assert.Equal(t, tc.fast, ok, tc.data)
		if ok {
			var slow chunk
			require.NoError(t, json.Unmarshal([]byte(tc.data), &slow))
			assert.Equal(t, slow, fast, tc.data)
		}
	}
}

// FuzzFastChunk: whatever the fast path takes, encoding/json takes too and
// decodes the same.
func FuzzFastChunk(f *testing.F) {
	f.Add(string(contentChunk))
	f.Add(`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"x","function":{"name":"f","arguments":"{\"a\":\"\\ud83d\\ude00\"}"}}]},"finish_reason":"tool_calls"}]}`)
	f.Add(`{"choices":[{"index":2,"delta":{"reasoning_content":"hm","content":null}},{"index":0,"delta":{}}],"usage":null}`)
	f.Fuzz(func(t *testing.T, data string) {
		var fast chunk
		if !fastChunk([]byte(data), &fast) {
			return
		}
		var slow chunk
		require.NoError(t, json.Unmarshal([]byte(data), &slow), "the fast path took %q", data)
		require.Equal(t, slow, fast, "%q", data)
	})
}

func BenchmarkDecodeChunk(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var ch chunk
			if !fastChunk(contentChunk, &ch) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			var ch chunk
			if err := json.Unmarshal(contentChunk, &ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
