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
	`{"task":"t","results":[{"id":1,"value":{"status":200,"headers":[["a","b"]],"body":"b2s=","eof":true}},{"id":2,"value":{"body":"!"}},{"id":3,"value":{"status":1}x}]}`,
	`{"task":"t","results":[{"id":1,"value":{"status":1},"value":{"body":"YQ=="},"id":2}]}`,
	`{"task":"t","task":null,"results":[{"id":1,"value":1,"error":{"type":"a"}},{"id":2}],"results":[{"id":null,"error":{"message":"m"}}]}`,
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
	`{"status":200,"status":null,"handle":1,"handle":null}`,
}

var outputSeeds = []string{
	`{"task":"t1","effects":[{"id":1,"type":"fetch","args":{"method":"GET","url":"http://x/"}},{"id":2,"type":"emit","args":{"events":[{"type":"policy.allow","data":{"a":[1,2.5,null]}}]}}]}`,
	`{"task":"t1","done":true,"result":{"n":1}}`,
	`{"task":"t1","done":true,"result":null}`,
	`{"task":"t1","done":true,"error":{"type":"agent_error","message":"boom \u003c\"x\"","status":500}}`,
	`{"task":"t1","done":true,"error":null,"error":{"type":"a"},"error":{"message":"b"}}`,
	`{"task":"t1","effects":[],"effects":null}`,
	`{"task":"t1","task":null,"done":true,"done":null,"effects":[{"id":1,"type":"a","args":1},{"id":3,"type":"c"}],"effects":[{"id":2}],"effects":[{"id":null},{"type":null}]}`,
	`{"task":"t1","effects":[{"id":1,"type":"sleep"},{"id":2,"args":null}]}`,
	` { "done" : false , "task" : "t" , "effects" : [ { "args" : [ ] , "id" : 3 } ] , "x" : { } } `,
	`{"task":"t","done":1}`,
	`{"task":"t","done":"true"}`,
	`{"task":"t","done":null}`,
	`{"task":"t","effects":[{"id":-1}]}`,
	`{"task":"t","effects":[{"id":1,"type":2}]}`,
	`{"task":"t","effects":{}}`,
	`{"task":"t","error":{"status":1.5}}`,
	`{"task":"t","result":}`,
	`{"task":"t"} x`,
	`null`,
	``,
}

var argsSeeds = []string{
	`{"method":"GET","url":"http://memory/","headers":[["accept","*/*"]],"body":"b2s=","stream":true}`,
	`{"method":"POST","url":"https://x/?q=\u003c","headers":null,"body":null,"stream":null}`,
	`{"method":null,"method":"PUT","url":"u","url":null,"stream":1}`,
	`{"events":[{"type":"policy.allow","run":"r1","data":{"service":"fake","url":"http://memory/"}}]}`,
	`{"events":[{"type":"a","run":"r","data":1},{"type":"b"}],"events":[{"data":null},{"run":null}],"events":[{}]}`,
	`{"events":[]}`,
	`{"events":null}`,
	`{"events":{}}`,
	`{"events":[{"type":1}]}`,
	`{"body":"!"}`,
	`{"headers":[["a","b","c"]]}`,
	`[]`,
}

// knownKeys are the member names the hand-written decoders read.
var knownKeys = []string{"task", "results", "id", "value", "error", "type", "message", "status", "headers", "body", "handle", "eof", "done", "effects", "args", "result", "method", "url", "stream", "events", "run", "data"}

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

func decodeFetchArgs(data []byte) (wire.FetchArgs, error) {
	var a wire.FetchArgs
	err := DecodeFetchArgs(data, &a)
	return a, err
}

func decodeEmitArgs(data []byte) (wire.EmitArgs, error) {
	var a wire.EmitArgs
	err := DecodeEmitArgs(data, &a)
	return a, err
}

func TestArgsDecodersAgreeWithEncodingJSON(t *testing.T) {
	for _, s := range argsSeeds {
		same(t, []byte(s), decodeFetchArgs)
		same(t, []byte(s), decodeEmitArgs)
	}
}

func FuzzDecodeArgs(f *testing.F) {
	for _, s := range argsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		same(t, data, decodeFetchArgs)
		same(t, data, decodeEmitArgs)
	})
}

func TestAppendFetchValueAgreesWithEncodingJSON(t *testing.T) {
	for _, v := range []wire.FetchValue{
		{Status: 200, Headers: []wire.Header{{"Content-Type", "text/<html>"}, {"X-\"q\"", "ü\x00\xff\u2028"}}, Body: []byte("ok")},
		{Status: 206, Headers: []wire.Header{}, Body: []byte{}, Handle: 1 << 60},
		{Status: -1},
		{},
	} {
		got := AppendFetchValue(nil, &v)
		assert.LessOrEqual(t, len(got), FetchValueSize(&v), "%s", got)
		want, err := json.Marshal(v)
		require.NoError(t, err)
		var gotBack, wantBack wire.FetchValue
		require.NoError(t, json.Unmarshal(got, &gotBack), "%s", got)
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, wantBack, gotBack, "%s", got)
	}
}

func TestDecodeOutputAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range outputSeeds {
		same(t, []byte(s), DecodeOutput)
	}
}

func FuzzDecodeOutput(f *testing.F) {
	for _, s := range outputSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { same(t, data, DecodeOutput) })
}

// AppendResume writes what decodes, with encoding/json and with
// DecodeResume, to the Resume it was given.
func TestAppendResume(t *testing.T) {
	for _, r := range []wire.Resume{
		{Task: "t1", Results: []wire.Result{
			{ID: 1, Value: json.RawMessage(`{"status":200,"headers":[["a","<b>"]],"body":"b2s="}`)},
			{ID: 1<<64 - 1, Error: &wire.Error{Type: "fetch_error", Message: "a\"b\\c\n\x01 <&> \u2028 \xff"}},
			{ID: 3, Value: json.RawMessage(`{}`), Error: &wire.Error{Type: "x", Status: 503}},
			{ID: 4},
		}},
		{Task: "t\"2", Results: []wire.Result{}},
		{Task: "t3"},
	} {
		got := AppendResume(nil, &r)
		assert.LessOrEqual(t, len(got), ResumeSize(&r), "%s", got)
		want, err := json.Marshal(r)
		require.NoError(t, err)
		var gotBack, wantBack wire.Resume
		require.NoError(t, json.Unmarshal(got, &gotBack), "%s", got)
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, canonical(t, wantBack), canonical(t, gotBack), "%s", got)
		back, err := DecodeResume(got)
		require.NoError(t, err)
		assert.Equal(t, canonical(t, wantBack), canonical(t, back), "%s", got)
	}
}

// canonical rewrites r's values as json.Marshal writes them: AppendResume
// leaves out the escapes of <, > and & json.Marshal adds to a value, which
// decode to the same characters.
func canonical(t *testing.T, r wire.Resume) wire.Resume {
	t.Helper()
	for i, res := range r.Results {
		if res.Value != nil {
			var v any
			require.NoError(t, json.Unmarshal(res.Value, &v))
			r.Results[i].Value, _ = json.Marshal(v)
		}
	}
	return r
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

// sameInto checks that DecodeResumeInto, with a destination of each
// type decoded by hand for every result, returns what DecodeResume
// returns, and that every destination that claims a value (Raw) holds
// what decoding that value on its own gives.
func sameInto(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := DecodeResume(data)
	for _, fetch := range []bool{true, false} {
		var dests []*Decoded
		got, err := DecodeResumeInto(data, func(task string, id uint64) *Decoded {
			d := &Decoded{V: new(wire.ReadValue), Raw: []byte("stale")}
			if fetch {
				d.V = &wire.FetchValue{Status: 1, Body: []byte("stale")}
			}
			dests = append(dests, d)
			return d
		})
		assert.Equal(t, wantErr, err, "%q", data)
		assert.Equal(t, want, got, "%q", data)
		for _, d := range dests {
			if d.Raw == nil {
				continue
			}
			switch v := d.V.(type) {
			case *wire.FetchValue:
				var alone wire.FetchValue
				require.NoError(t, DecodeFetchValue(d.Raw, &alone), "%q", d.Raw)
				assert.Equal(t, alone, *v, "%q", d.Raw)
			case *wire.ReadValue:
				var alone wire.ReadValue
				require.NoError(t, decodeReadValue(d.Raw, &alone), "%q", d.Raw)
				assert.Equal(t, alone, *v, "%q", d.Raw)
			}
		}
	}
}

func TestDecodeResumeInto(t *testing.T) {
	for _, s := range resumeSeeds {
		sameInto(t, []byte(s))
	}
	data := []byte(`{"task":"t","results":[{"id":1,"value":{"status":200,"body":"b2s="}},{"id":2,"value":{"status":"x"}},{"value":{},"id":3}]}`)
	var asked []uint64
	dests := map[uint64]*Decoded{}
	r, err := DecodeResumeInto(data, func(task string, id uint64) *Decoded {
		assert.Equal(t, "t", task)
		asked = append(asked, id)
		dests[id] = &Decoded{V: new(wire.FetchValue)}
		return dests[id]
	})
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 2}, asked, "asked only once the id is known")
	assert.Equal(t, wire.FetchValue{Status: 200, Body: []byte("ok")}, *dests[1].V.(*wire.FetchValue))
	assert.Equal(t, json.RawMessage(`{"status":200,"body":"b2s="}`), r.Results[0].Value)
	assert.Equal(t, &r.Results[0].Value[0], &dests[1].Raw[0], "Raw is the result's Value")
	assert.Nil(t, dests[2].Raw, "a value that does not decode is left to the waiter")
	assert.Equal(t, json.RawMessage(`{"status":"x"}`), r.Results[1].Value)
}

func FuzzDecodeResume(f *testing.F) {
	for _, s := range resumeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		same(t, data, DecodeResume)
		sameInto(t, data)
	})
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
