package modeltest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/invopop/jsonschema"
	sj "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validate checks v against schema with a real JSON Schema validator.
func validate(t *testing.T, schema, v json.RawMessage) {
	t.Helper()
	doc, err := sj.UnmarshalJSON(bytes.NewReader(schema))
	require.NoError(t, err)
	c := sj.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("schema.json", doc))
	s, err := c.Compile("schema.json")
	require.NoError(t, err)
	inst, err := sj.UnmarshalJSON(bytes.NewReader(v))
	require.NoError(t, err)
	require.NoError(t, s.Validate(inst), "value %s", v)
}

func TestValueSatisfiesHandWrittenSchemas(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string // "" to check validity only
	}{
		{"string", `{"type":"string"}`, `"test"`},
		{"enum", `{"enum":["bug","feature","question"]}`, `"bug"`},
		{"const", `{"const":{"a":1}}`, `{"a":1}`},
		{"integer range", `{"type":"integer","minimum":1,"maximum":3}`, `1`},
		{"exclusive", `{"type":"integer","exclusiveMinimum":5,"exclusiveMaximum":7}`, `6`},
		{"draft 4 exclusive", `{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","minimum":0,"exclusiveMinimum":true,"maximum":1}`, ""},
		{"negative range", `{"type":"integer","maximum":-10}`, ""},
		{"multipleOf", `{"type":"number","minimum":7,"multipleOf":5}`, `10`},
		{"number fraction", `{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}`, ""},
		{"boolean", `{"type":"boolean"}`, `true`},
		{"null", `{"type":"null"}`, `null`},
		{"nullable", `{"type":["null","string"],"minLength":6}`, `"testxx"`},
		{"maxLength", `{"type":"string","maxLength":2}`, `"te"`},
		{"formats", `{"type":"object","required":["a","b","c","d","e"],"properties":{
			"a":{"type":"string","format":"date-time"},"b":{"type":"string","format":"email"},
			"c":{"type":"string","format":"uri"},"d":{"type":"string","format":"uuid"},"e":{"type":"string","format":"date"}}}`, ""},
		{"pattern", `{"type":"string","pattern":"^[A-Z]{3}-\\d{4}$"}`, `"AAA-0000"`},
		{"pattern with alternation", `{"type":"string","pattern":"^(foo|bar)+baz?$","minLength":4}`, ""},
		{"array", `{"type":"array","items":{"type":"integer","minimum":2},"minItems":3}`, `[2,2,2]`},
		{"unique items", `{"type":"array","items":{"enum":["a","b","c"]},"minItems":3,"uniqueItems":true}`, `["a","b","c"]`},
		{"unique strings", `{"type":"array","items":{"type":"string"},"minItems":2,"uniqueItems":true}`, ""},
		{"empty array allowed", `{"type":"array","items":{"type":"string"},"maxItems":0}`, `[]`},
		{"tuple", `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, `["test",1]`},
		{"map", `{"type":"object","additionalProperties":{"type":"integer"}}`, `{"key1":1}`},
		{"closed object", `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, `{"a":"test"}`},
		{"minProperties", `{"type":"object","minProperties":2,"additionalProperties":{"type":"boolean"}}`, ""},
		{"anyOf prefers a value to null", `{"anyOf":[{"type":"null"},{"type":"integer","minimum":4}]}`, `4`},
		{"oneOf", `{"oneOf":[{"type":"string","maxLength":3,"minLength":3}]}`, `"tes"`},
		{"allOf", `{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"properties":{"b":{"type":"integer"}},"required":["b"]}]}`, `{"a":"test","b":1}`},
		{"ref and defs", `{"$ref":"#/$defs/T","$defs":{"T":{"type":"object","properties":{"x":{"$ref":"#/$defs/U"}},"required":["x"]},"U":{"type":"integer","minimum":9}}}`, `{"x":9}`},
		{"recursion ends", `{"$ref":"#/$defs/Node","$defs":{"Node":{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/Node"}}},"required":["name"]}}}`, ""},
		{"true", `true`, `"test"`},
		{"empty schema", `{}`, `"test"`},
		{"no type, properties", `{"properties":{"a":{"type":"integer"}},"required":["a"]}`, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Value(json.RawMessage(tc.schema))
			require.NoError(t, err)
			if tc.want != "" {
				assert.JSONEq(t, tc.want, string(v))
			}
			validate(t, json.RawMessage(tc.schema), v)
			again, err := Value(json.RawMessage(tc.schema))
			require.NoError(t, err)
			assert.Equal(t, string(v), string(again), "the same value each time")
		})
	}
}

func TestValueRefusesWhatCannotBeSatisfied(t *testing.T) {
	for name, schema := range map[string]string{
		"false":              `false`,
		"required recursion": `{"$ref":"#/$defs/L","$defs":{"L":{"type":"object","properties":{"next":{"$ref":"#/$defs/L"}},"required":["next"]}}}`,
		"empty range":        `{"type":"integer","minimum":5,"maximum":4}`,
		"external ref":       `{"$ref":"https://example.com/s.json"}`,
		"closed required":    `{"type":"object","required":["a"],"additionalProperties":false}`,
		"not JSON":           `{`,
		"bad pattern":        `{"type":"string","pattern":"("}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Value(json.RawMessage(schema))
			assert.Error(t, err)
		})
	}
}

// The types agents use, their schemas generated by invopop/jsonschema as
// the harness generates them: the values validate.
type triage struct {
	Label    string `json:"label" jsonschema:"enum=bug,enum=feature,enum=question"`
	Priority int    `json:"priority" jsonschema:"minimum=1,maximum=3"`
	Summary  string `json:"summary" jsonschema:"minLength=10"`
}

type address struct {
	Street string `json:"street"`
	Zip    string `json:"zip" jsonschema:"pattern=^[0-9]{5}$"`
}

type person struct {
	Name     string            `json:"name"`
	Email    string            `json:"email,omitempty" jsonschema:"format=email"`
	Born     time.Time         `json:"born"`
	Home     address           `json:"home"`
	Previous []address         `json:"previous,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Score    *float64          `json:"score,omitempty" jsonschema:"minimum=0,maximum=1"`
	Friends  []*person         `json:"friends,omitempty"`
	Kind     string            `json:"kind" jsonschema:"enum=a,enum=b"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
}

func TestValueOfInvopopSchemas(t *testing.T) {
	for name, v := range map[string]any{"triage": triage{}, "person": person{}, "slice": []triage{}} {
		t.Run(name, func(t *testing.T) {
			schema, err := json.Marshal((&jsonschema.Reflector{}).Reflect(v))
			require.NoError(t, err)
			value, err := Value(schema)
			require.NoError(t, err, "schema %s", schema)
			validate(t, schema, value)
		})
	}
}

// FuzzValue: on any schema, Value returns an error or a JSON value,
// never panics, and gives the same answer twice.
func FuzzValue(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"string","minLength":3}},"required":["a"]}`)
	f.Add(`{"type":"array","items":{"type":"integer","multipleOf":3,"minimum":1},"minItems":2,"uniqueItems":true}`)
	f.Add(`{"anyOf":[{"type":"null"},{"enum":[1,2]}]}`)
	f.Add(`{"type":"string","pattern":"^a+b{2}$","maxLength":3}`)
	f.Add(`{"$ref":"#/$defs/a","$defs":{"a":{"allOf":[{"$ref":"#"}]}}}`)
	f.Fuzz(func(t *testing.T, schema string) {
		v, err := Value(json.RawMessage(schema))
		again, err2 := Value(json.RawMessage(schema))
		require.Equal(t, err == nil, err2 == nil)
		if err != nil {
			return
		}
		require.True(t, json.Valid(v), "%s", v)
		require.Equal(t, string(v), string(again))
	})
}
