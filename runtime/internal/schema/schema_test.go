package schema

import (
	"encoding/json"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type Base struct {
	ID      string `json:"id"`
	Comment string `json:"comment,omitempty"`
}

type Item struct {
	Base
	Name    string          `json:"name"`
	Count   uint            `json:"count,omitempty"`
	Price   float64         `json:"price"`
	Big     int64           `json:"big,string"`
	Tags    []string        `json:"tags,omitempty"`
	Labels  map[string]int  `json:"labels,omitempty"`
	At      time.Time       `json:"at"`
	Maybe   *bool           `json:"maybe,omitempty"`
	Raw     json.RawMessage `json:"raw,omitempty"`
	Any     any             `json:"any,omitempty"`
	Data    []byte          `json:"data,omitempty"`
	IP      net.IP          `json:"ip,omitempty"`
	Pair    [2]int          `json:"pair"`
	Skipped string          `json:"-"`
	//lint:ignore U1000 unexported: not a member, which is the point
	internal string
	Untagged bool              // the Go name is the JSON name
	Nested   struct{ X int }   `json:"nested"`
	Headers  map[string]string `json:"headers,omitzero"`
}

type Tree struct {
	Value    int     `json:"value"`
	Children []*Tree `json:"children,omitempty"`
}

func TestSchema(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"string", reflect.TypeFor[string](), `{"type":"string"}`},
		{"int", reflect.TypeFor[int](), `{"type":"integer"}`},
		{"uint8", reflect.TypeFor[uint8](), `{"type":"integer","minimum":0,"maximum":255}`},
		{"int16", reflect.TypeFor[int16](), `{"type":"integer","minimum":-32768,"maximum":32767}`},
		{"float32", reflect.TypeFor[float32](), `{"type":"number","minimum":-3.4028234663852886e38,"maximum":3.4028234663852886e38}`},
		{"any", reflect.TypeFor[any](), `{}`},
		{"pointer", reflect.TypeFor[*string](), `{"type":["string","null"]}`},
		{"slice", reflect.TypeFor[[]int](), `{"type":["array","null"],"items":{"type":"integer"}}`},
		{"time", reflect.TypeFor[time.Time](), `{"type":"string","format":"date-time"}`},
		{"empty struct", reflect.TypeFor[struct{}](), `{"type":"object","properties":{},"additionalProperties":false}`},
		{"struct", reflect.TypeFor[Item](), `{
			"type": "object",
			"additionalProperties": false,
			"required": ["id","name","price","big","at","pair","Untagged","nested"],
			"properties": {
				"id": {"type":"string"},
				"comment": {"type":"string"},
				"name": {"type":"string"},
				"count": {"type":"integer","minimum":0},
				"price": {"type":"number"},
				"big": {"type":"string"},
				"tags": {"type":["array","null"],"items":{"type":"string"}},
				"labels": {"type":["object","null"],"additionalProperties":{"type":"integer"}},
				"at": {"type":"string","format":"date-time"},
				"maybe": {"type":["boolean","null"]},
				"raw": true,
				"any": true,
				"data": {"type":["string","null"],"contentEncoding":"base64"},
				"ip": {"type":"string"},
				"pair": {"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":2},
				"Untagged": {"type":"boolean"},
				"nested": {"type":"object","properties":{"X":{"type":"integer"}},"required":["X"],"additionalProperties":false},
				"headers": {"type":["object","null"],"additionalProperties":{"type":"string"}}
			}}`},
		{"recursive", reflect.TypeFor[Tree](), `{
			"$ref": "#/$defs/Tree",
			"$defs": {"Tree": {
				"type": "object",
				"additionalProperties": false,
				"required": ["value"],
				"properties": {
					"value": {"type":"integer"},
					"children": {"type":["array","null"],"items":{"anyOf":[{"$ref":"#/$defs/Tree"},{"type":"null"}]}}
				}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.want), &want))
			want["$schema"] = Dialect
			wantJSON, _ := json.Marshal(want)
			assert.JSONEq(t, string(wantJSON), string(For(tc.typ)))
		})
	}
}

func TestFieldsFollowEncodingJSON(t *testing.T) {
	type A struct {
		X int `json:"x"`
		Y int
	}
	type B struct {
		X int
		Y int
	}
	type Outer struct {
		A
		B
		Y int `json:"Y"` // shallower: wins over A.Y and B.Y
	}
	var names []string
	for _, f := range Fields(reflect.TypeFor[Outer]()) {
		names = append(names, f.Name)
	}
	// X: A's is tagged, B's is not: A wins. Y: the outer field wins.
	assert.Equal(t, []string{"x", "X", "Y"}, names)

	// The same names as encoding/json writes.
	b, err := json.Marshal(Outer{A: A{X: 1, Y: 2}, B: B{X: 3, Y: 4}, Y: 5})
	require.NoError(t, err)
	assert.JSONEq(t, `{"x":1,"X":3,"Y":5}`, string(b))
}

func TestDecode(t *testing.T) {
	type In struct {
		Name  string            `json:"name"`
		Age   int               `json:"age,omitempty"`
		Tags  []string          `json:"tags,omitempty"`
		Items []Base            `json:"items,omitempty"`
		Opt   *int              `json:"opt,omitempty"`
		Meta  map[string]string `json:"meta,omitempty"`
		When  time.Time         `json:"when,omitzero"`
	}
	for _, tc := range []struct {
		name    string
		payload string
		want    In
		err     string
	}{
		{name: "ok", payload: `{"name":"a","age":3,"tags":["x"],"opt":null}`, want: In{Name: "a", Age: 3, Tags: []string{"x"}}},
		{name: "unknown field", payload: `{"name":"a","nope":1}`, err: `field "nope": unknown field`},
		{name: "wrong case", payload: `{"Name":"a"}`, err: `field "Name": unknown field`},
		{name: "missing required", payload: `{"age":3}`, err: `field "name": missing`},
		{name: "empty payload means {}", payload: ``, err: `field "name": missing`},
		{name: "wrong type", payload: `{"name":3}`, err: `field "name": want string, got JSON number`},
		{name: "too big", payload: `{"name":"a","age":1e100}`, err: `field "age": want integer (int), got JSON number 1e100`},
		{name: "null for a string", payload: `{"name":null}`, err: `field "name": want string, got null`},
		{name: "nested unknown", payload: `{"name":"a","items":[{"id":"1"},{"id":"2","x":1}]}`, err: `field "items[1].x": unknown field`},
		{name: "nested missing", payload: `{"name":"a","items":[{}]}`, err: `field "items[0].id": missing`},
		{name: "not an object", payload: `"hi"`, err: `payload: want object, got JSON string`},
		{name: "map value type", payload: `{"name":"a","meta":{"k":1}}`, err: `field "meta.k": want string, got JSON number`},
		{name: "bad time", payload: `{"name":"a","when":"yesterday"}`, err: `parsing time`},
		{name: "trailing data", payload: `{"name":"a"} {}`, err: `not one JSON value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got In
			err := Decode([]byte(tc.payload), &got)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeNullIsZeroInput(t *testing.T) {
	type In struct {
		Name string `json:"name,omitempty"`
	}
	for _, payload := range []string{``, `null`, ` {} `} {
		var in In
		require.NoError(t, Decode([]byte(payload), &in), "%q", payload)
		assert.Equal(t, In{}, in)
	}
	var n int
	assert.ErrorContains(t, Decode([]byte(`null`), &n), "payload: want integer (int), got null")
}
