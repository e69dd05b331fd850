package wirejson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

var resumeSeeds = []string{
	`{"task":"t1","results":[{"id":1,"value":{"status":200}},{"id":2,"error":{"type":"fetch_error","message":"refused"}}]}`,
	`{"task":"t1","results":[]}`,
	`{"task":"t1","results":null}`,
	` { "results" : [ { "value" : [1, "two", {"x": null}, true, false, -1.5e+3] , "id" : 18446744073709551615 } ] , "task" : "é\u00e9\ud83d\ude00" } `,
	`{"task":"t","results":[{"id":1,"value":null,"error":null}],"extra":{"a":[{}]}}`,
	`{"task":"t","results":[{"id":1,"error":{"type":"x","message":"a\"b\\c\n\u0001","status":503}}]}`,
	`{"task":"bad \ud800 surrogate \udc00\ud800\u0041"}`,
	"{\"task\":\"invalid \xff utf8\"}",
	`{"task":"t","results":[{"id":-1}]}`,
	`{"task":"t","results":[{"id":1.5}]}`,
	`{"task":"t","results":[{"id":"1"}]}`,
	`{"task":"t","results":[{"id":1}]} trailing`,
	`{"task":"t","results":[{"id":1},]}`,
	`{"task":"t",}`,
	`{"task":"t"`,
	`{"task":"t","results":[{"id":01}]}`,
	`{"task":"t","results":[{"value":tru}]}`,
	`{"task":"t","results":[{"value":"\x01"}]}`,
	`{"task":"t","results":[{"value":"\q"}]}`,
	`[]`,
	`null`,
	``,
}

var fetchValueSeeds = []string{
	`{"status":200,"headers":[["content-type","text/plain"],["set-cookie","a"],["set-cookie","b"]],"body":"aGVsbG8="}`,
	`{"status":206,"headers":[],"handle":7}`,
	`{"status":200,"headers":null,"body":null}`,
	`{"status":200,"body":""}`,
	`{"status":200,"headers":[["a"],["b","c","d"],[]]}`,
	`{"status":200,"headers":[[null,"x"]]}`,
	`{"status":"200"}`,
	`{"status":200.0}`,
	`{"status":2e2}`,
	`{"status":99999999999999999999}`,
	`{"body":"not base64!"}`,
	`{"body":"aGVs\nbG8="}`,
	`{"handle":-3}`,
	`{"headers":["a"]}`,
	`{"headers":[[1,2]]}`,
	`{"status":200,"headers":[["k","v"]],"headers":[["k2","v2"]]}`,
}

// knownKeys are the member names the hand-written decoders read.
var knownKeys = []string{"task", "results", "id", "value", "error", "type", "message", "status", "headers", "body", "handle", "eof"}

// miscased reports whether data has a member name that only encoding/json
// takes for a known one (it matches names without case), where the
// decoders differ by design.
func miscased(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok {
			for _, k := range knownKeys {
				if s != k && strings.EqualFold(s, k) {
					return true
				}
			}
		}
	}
}

// same checks that a hand-written decoder and encoding/json agree on data:
// both fail, or both succeed with the same value.
func same[T any](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	t.Helper()
	if miscased(data) {
		return
	}
	got, err := decode(data)
	var want T
	wantErr := json.Unmarshal(data, &want)
	if wantErr != nil {
		assert.Error(t, err, "encoding/json refuses %q: %v", data, wantErr)
		return
	}
	require.NoError(t, err, "encoding/json accepts %q", data)
	assert.Equal(t, want, got, "%q", data)
}

func decodeFetchValue(data []byte) (wire.FetchValue, error) {
	var v wire.FetchValue
	err := DecodeFetchValue(data, &v)
	return v, err
}

func decodeRead(data []byte) (wire.ReadValue, error) {
	var v wire.ReadValue
	err := decodeReadValue(data, &v)
	return v, err
}

func TestDecodersAgreeWithEncodingJSON(t *testing.T) {
	for _, s := range resumeSeeds {
		same(t, []byte(s), DecodeResume)
	}
	for _, s := range fetchValueSeeds {
		same(t, []byte(s), decodeFetchValue)
	}
	for _, s := range []string{`{"body":"YWI=","eof":true}`, `{"eof":false}`, `{"eof":null}`, `{"eof":1}`, `{}`} {
		same(t, []byte(s), decodeRead)
	}
}

func TestResumeValuesAreSlicesOfTheInput(t *testing.T) {
	r, err := DecodeResume([]byte(`{"task":"t","results":[{"id":3,"value": {"a" : [1, 2]} }]}`))
	require.NoError(t, err)
	assert.Equal(t, json.RawMessage(`{"a" : [1, 2]}`), r.Results[0].Value)
}

func TestEncodersAgreeWithEncodingJSON(t *testing.T) {
	for _, a := range []wire.FetchArgs{
		{Method: "GET", URL: "https://api.example.com/v1/items?page=2&q=<x>"},
		{Method: "POST", URL: "https://x/", Headers: []wire.Header{{"Content-Type", "application/json"}, {"X-\"q\"", "ü\x00\xff"}}, Body: []byte("{\"a\":1}"), Stream: true},
		{Headers: []wire.Header{}, Body: []byte{}},
	} {
		got, err := Marshal(a)
		require.NoError(t, err)
		var back wire.FetchArgs
		require.NoError(t, json.Unmarshal(got, &back))
		want, _ := json.Marshal(a)
		var wantBack wire.FetchArgs
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, wantBack, back, "%s", got)
	}
	got, err := Marshal(wire.ReadArgs{Handle: 1 << 60, Max: 4096})
	require.NoError(t, err)
	assert.JSONEq(t, `{"handle":1152921504606846976,"max":4096}`, string(got))
}

func TestAppendStringAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `q"uote`, `back\slash`, "nl\n cr\r tab\t", "\x00\x01\x1f\x7f",
		"héllo wörld ✓ 😀", "bad \xff utf8 \xc3", "<html>&amp;", "\u2028\u2029",
	} {
		var got, want string
		require.NoError(t, json.Unmarshal(AppendString(nil, s), &got), "%q", s)
		wantJSON, _ := json.Marshal(s)
		require.NoError(t, json.Unmarshal(wantJSON, &want))
		assert.Equal(t, want, got, "%q", s)
	}
}

func TestDepthIsBounded(t *testing.T) {
	deep := `{"task":"t","results":[{"id":1,"value":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}]}`
	_, err := DecodeResume([]byte(deep))
	assert.ErrorContains(t, err, "nested too deep")
}

func FuzzDecodeResume(f *testing.F) {
	for _, s := range resumeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { same(t, data, DecodeResume) })
}

func FuzzDecodeFetchValue(f *testing.F) {
	for _, s := range fetchValueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { same(t, data, decodeFetchValue) })
}

// Encoded args are the caller's JSON, sent as they are.
func TestMarshalEncoded(t *testing.T) {
	in := Encoded(`{"events":[{"type":"t","data":{"a":1}}]}`)
	out, err := Marshal(in)
	require.NoError(t, err)
	assert.Equal(t, string(in), string(out))
}

// The round trip's own messages, as the local host sends them. Run these
// under wasm for real timings: calls and memory accesses cost much more
// there than natively.
var (
	benchResume = []byte(`{"task":"bench","results":[{"id":12,"value":{"status":200,"headers":[["content-type","text/plain"]],"body":"b2s="}},{"id":13,"value":{}}]}`)
	benchFetch  = []byte(`{"status":200,"headers":[["content-type","text/plain"]],"body":"b2s="}`)
)

func BenchmarkDecodeResume(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeResume(benchResume); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFetchValue(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var v wire.FetchValue
		if err := DecodeFetchValue(benchFetch, &v); err != nil {
			b.Fatal(err)
		}
	}
}
