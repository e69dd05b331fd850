package fakeproviders

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(t *testing.T, s *Server, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const anthropicBody = `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// Over real TCP the stream arrives in many small pieces, each flushed.
func TestStreamArrivesInPieces(t *testing.T) {
	s := NewAnthropic(t, "fake-anthropic-key-t")
	s.Push(Turn{Text: strings.Repeat("word ", 100), CRLF: true})
	resp := post(t, s, AnthropicPath, map[string]string{"x-api-key": "fake-anthropic-key-t", "anthropic-version": "2023-06-01"}, anthropicBody)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	var whole strings.Builder
	reads := 0
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			reads++
			whole.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, reads, 3, "pieces, not one write")
	body := whole.String()
	assert.True(t, strings.HasPrefix(body, "event: message_start\r\ndata: {"), body[:40])
	assert.Contains(t, body, "event: ping\r\n")
	assert.True(t, strings.HasSuffix(body, "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n"))
	assert.NotContains(t, strings.ReplaceAll(body, "\r\n", ""), "\n", "CRLF only")
}

func TestCredentialIsChecked(t *testing.T) {
	s := NewAnthropic(t, "fake-anthropic-key-t")
	s.Push(Turn{Text: "x"})
	for _, hdr := range []map[string]string{
		{"anthropic-version": "2023-06-01"},
		{"anthropic-version": "2023-06-01", "x-api-key": "fake-anthropic-key-other"},
		{"anthropic-version": "2023-06-01", "Authorization": "Bearer fake-anthropic-key-t"},
	} {
		resp := post(t, s, AnthropicPath, hdr, anthropicBody)
		assert.Equal(t, 401, resp.StatusCode)
		b, _ := io.ReadAll(resp.Body)
		assert.JSONEq(t, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"`+resp.Header.Get("request-id")+`"}`, string(b))
	}
	assert.Equal(t, 1, s.Pending(), "no turn taken")
	assert.Len(t, s.Requests(), 3)

	o := NewOpenAI(t, "fake-openai-key-t")
	o.Push(Turn{Text: "x"})
	resp := post(t, o, OpenAIPath, map[string]string{"Authorization": "Bearer wrong"}, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, 401, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.JSONEq(t, `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, string(b))
	resp = post(t, o, OpenAIPath, map[string]string{"Authorization": "Bearer fake-openai-key-t"}, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, 200, resp.StatusCode)
	b, _ = io.ReadAll(resp.Body)
	assert.Contains(t, string(b), `"choices":[],`)
	assert.True(t, strings.HasSuffix(string(b), "data: [DONE]\n\n"))
}

func TestRequestsAreCheckedLikeTheService(t *testing.T) {
	key := map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}
	for name, body := range map[string]string{
		"no max_tokens":          `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"assistant first":        `{"model":"m","max_tokens":1,"stream":true,"messages":[{"role":"assistant","content":"hi"}]}`,
		"unanswered tool_use":    `{"model":"m","max_tokens":1,"stream":true,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"x","input":{}}]},{"role":"user","content":"next"}]}`,
		"result without its use": `{"model":"m","max_tokens":1,"stream":true,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t9","content":"x"}]}]}`,
		"empty text":             `{"model":"m","max_tokens":1,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`,
		"not streaming":          `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`,
		"not JSON":               `{`,
	} {
		t.Run(name, func(t *testing.T) {
			s := NewAnthropic(t, "k")
			s.Push(Turn{Text: "x"})
			resp := post(t, s, AnthropicPath, key, body)
			assert.Equal(t, 400, resp.StatusCode)
			assert.Equal(t, 1, s.Pending())
		})
	}
}
