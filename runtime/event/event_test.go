package event

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// payloads is one zero value of each payload type, in the order of types.
var payloads = []Payload{
	RunStart{}, RunFinish{}, RunError{}, RunCancel{},
	TurnStart{}, TurnFinish{}, TextDelta{}, ThinkingDelta{}, ModelRetry{},
	ToolStart{}, ToolFinish{}, ToolError{}, ShellExec{}, ShellExit{},
	PolicyAllow{}, PolicyDeny{}, PolicyReport{}, EgressAllow{}, EgressDeny{},
	ResultRetry{}, CompactionStart{}, CompactionFinish{}, SubagentStart{}, SubagentFinish{},
	Log{},
}

func TestEveryTypeHasItsPayload(t *testing.T) {
	require.Len(t, payloads, len(types))
	for i, p := range payloads {
		assert.Equal(t, types[i], p.Type())
		assert.True(t, Known(p.Type()))
		got, err := Decode(p.Type(), nil)
		require.NoError(t, err)
		assert.Equal(t, reflect.TypeOf(p), reflect.TypeOf(got), "Decode returns the payload struct of %s", p.Type())
	}
	assert.False(t, Known("probe.tick"))
	assert.False(t, Known(""))
	_, err := Decode("probe.tick", []byte(`{}`))
	assert.ErrorContains(t, err, `"probe.tick" is not one of damper's event types`)
	assert.Equal(t, types[:], Types())
}

var sampleStrings = []string{"", "a", "tool_use", `quote " and \ backslash`, "line\nbreak\ttab\r", "\x00\x1f ctl", "é ü 日本", "\xff bad utf-8", "</script>&", "\u2028\u2029"}
var sampleRaw = []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`{"a":1,"b":[true,null,"x"]}`), json.RawMessage(`"s"`), json.RawMessage(`12.5`), json.RawMessage(`[]`)}
var sampleFloats = []float64{0, 1, 0.0125, 1e-7, 3.5e-9, 123456789.25, 1e21, 2.5e22}

// fill sets every field of v (a pointer to a struct) to a random sample.
func fill(r *rand.Rand, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[json.RawMessage]():
			f.Set(reflect.ValueOf(sampleRaw[r.IntN(len(sampleRaw))]))
		case f.Kind() == reflect.String:
			f.SetString(sampleStrings[r.IntN(len(sampleStrings))])
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt([]int64{0, 1, -3, 42, 1 << 40}[r.IntN(5)])
		case f.Kind() == reflect.Float64:
			f.SetFloat(sampleFloats[r.IntN(len(sampleFloats))])
		case f.Kind() == reflect.Bool:
			f.SetBool(r.IntN(2) == 1)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			n := r.IntN(4) - 1
			if n < 0 {
				f.SetZero()
				continue
			}
			s := make([]string, n)
			for j := range s {
				s[j] = sampleStrings[r.IntN(len(sampleStrings))]
			}
			f.Set(reflect.ValueOf(s))
		case f.Kind() == reflect.Struct:
			fill(r, f)
		default:
			panic("fill: field " + v.Type().Field(i).Name + " of kind " + f.Kind().String())
		}
	}
}

// The hand-written encoders write what encoding/json writes, for every
// payload type and many values, special characters and bad UTF-8
// included (under the output cap, which json.Marshal knows nothing of):
// the same JSON, up to the escapes encoding/json adds for HTML and
// JavaScript (<, >, &, U+2028, U+2029), which decode the same.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, zero := range payloads {
		for range 300 {
			pv := reflect.New(reflect.TypeOf(zero))
			fill(r, pv.Elem())
			p := pv.Elem().Interface().(Payload)
			want, err := json.Marshal(p)
			require.NoError(t, err)
			got := p.appendJSON(nil)
			require.Equal(t, unescapeHTML(want), string(got), "%s %#v", p.Type(), p)
		}
	}
}

// unescapeHTML undoes the escapes json.Marshal adds for HTML and
// JavaScript, which the hand encoders leave out.
func unescapeHTML(b []byte) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028", `\u2029`, "\u2029").Replace(string(b))
}

// sameJSON reports whether a and b are valid JSON of the same value,
// numbers compared as written.
func sameJSON(a, b []byte) bool {
	decode := func(raw []byte) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil && !d.More()
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}

func TestOutputIsCapped(t *testing.T) {
	long := strings.Repeat("é", MaxOutput) // two bytes each: the cut falls inside one
	for _, p := range []Payload{ToolFinish{Tool: "bash", Output: long}, ShellExit{Output: long}} {
		var v struct {
			Output    string `json:"output"`
			Truncated bool   `json:"truncated"`
		}
		require.NoError(t, json.Unmarshal(p.appendJSON(nil), &v))
		assert.True(t, v.Truncated, "%s", p.Type())
		assert.LessOrEqual(t, len(v.Output), MaxOutput)
		assert.Greater(t, len(v.Output), MaxOutput-2)
		assert.True(t, strings.HasPrefix(long, v.Output), "cut at a character boundary")
	}

	args := json.RawMessage(`{"content":"` + strings.Repeat("x", 2*MaxOutput) + `"}`)
	var v ToolStart
	require.NoError(t, json.Unmarshal(ToolStart{Tool: "write", Args: args}.appendJSON(nil), &v))
	assert.True(t, v.Truncated)
	var s string
	require.NoError(t, json.Unmarshal(v.Args, &s), "truncated args are a JSON string of their start")
	assert.Equal(t, string(args[:MaxOutput]), s)

	// Arguments that are not JSON stay decodable.
	require.NoError(t, json.Unmarshal(ToolStart{Tool: "x", Args: json.RawMessage(`{broken`)}.appendJSON(nil), &v))
	assert.Equal(t, `"{broken"`, string(v.Args))
}

func TestEnvelopeJSON(t *testing.T) {
	e := Envelope{
		Seq: 7, Time: time.Date(2026, 12, 1, 10, 4, 5, 123456789, time.FixedZone("x", 3600)),
		Type: TypeToolStart, Agent: "triage", Instance: "i-1", Run: "r_1", Session: "s", Turn: "t2", Call: "toolu_1",
		Data: json.RawMessage(`{"tool":"bash"}`),
	}
	b, err := json.Marshal(&e)
	require.NoError(t, err)
	assert.Equal(t, `{"seq":7,"time":"2026-12-01T09:04:05.123Z","type":"tool.start","agent":"triage","instance":"i-1","run":"r_1","session":"s","turn":"t2","call":"toolu_1","data":{"tool":"bash"}}`, string(b))
	var back Envelope
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, e.Time.Truncate(time.Millisecond).UTC(), back.Time.UTC())
	back.Time = e.Time
	assert.Equal(t, e, back)
	p, err := back.Payload()
	require.NoError(t, err)
	assert.Equal(t, ToolStart{Tool: "bash"}, p)

	min := Envelope{Seq: 1, Time: time.UnixMilli(0), Type: TypeLog, Agent: "a", Instance: "b"}
	b, _ = json.Marshal(&min)
	assert.Equal(t, `{"seq":1,"time":"1970-01-01T00:00:00.000Z","type":"log","agent":"a","instance":"b"}`, string(b))
}

// What Emit sends is the emit effect of docs/abi.md, as the Go host reads it.
func TestEmitArgs(t *testing.T) {
	ev := Event{Session: "s1", Turn: "t1", Call: "c1", Data: TurnFinish{Model: "m", StopReason: "end_turn", Usage: Usage{InputTokens: 3, OutputTokens: 4}, Cost: 0.5}}
	raw := AppendEmitArgs(nil, ev)
	var a wire.EmitArgs
	require.NoError(t, json.Unmarshal(raw, &a))
	var fast wire.EmitArgs
	require.NoError(t, wirejson.DecodeEmitArgs(raw, &fast))
	assert.Equal(t, a, fast)
	require.Len(t, a.Events, 1)
	assert.Equal(t, wire.Event{Type: "turn.finish", Session: "s1", Turn: "t1", Call: "c1",
		Data: json.RawMessage(`{"model":"m","stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4},"cost":0.5,"duration_ms":0}`)}, a.Events[0])

	bare := AppendEmitArgs(nil, Event{Data: TextDelta{Text: "hi"}})
	assert.Equal(t, `{"events":[{"type":"text.delta","data":{"text":"hi"}}]}`, string(bare))
}

func TestTerminal(t *testing.T) {
	for _, typ := range types {
		assert.Equal(t, typ == TypeRunFinish || typ == TypeRunError || typ == TypeRunCancel, Terminal(typ), "%s", typ)
	}
}

func FuzzDecode(f *testing.F) {
	for i, p := range payloads {
		f.Add(string(types[i]), string(p.appendJSON(nil)))
	}
	f.Add("tool.start", `{"tool":"bash","args":{"command":"ls"}}`)
	f.Add("run.finish", `{"result":[1,2],"usage":{"input_tokens":1},"cost":1e-9}`)
	f.Add("log", `{"level":"info","message":"m","attrs":{"k":"v"}}`)
	f.Add("nope", `{}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		p, err := Decode(Type(typ), json.RawMessage(data))
		if err != nil {
			return
		}
		// What decodes encodes again, and the hand encoder agrees with
		// encoding/json on it (below the cap).
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%s: re-encode %#v: %v", typ, p, err)
		}
		if len(want) > MaxOutput {
			return
		}
		got := p.appendJSON(nil)
		if !sameJSON(got, want) {
			t.Fatalf("%s: appendJSON %s, json.Marshal %s", typ, got, want)
		}
	})
}
