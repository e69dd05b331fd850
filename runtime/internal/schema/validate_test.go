package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The types agents hand the harness: nested structs, enums, optional
// fields, slices, maps, time.Time, pointers, sized numbers.
type (
	Label string

	Issue struct {
		Title    string            `json:"title" jsonschema:"minLength=1,maxLength=80,description=One line\\, no more"`
		Label    Label             `json:"label" jsonschema:"enum=bug,enum=feature,enum=question"`
		Priority int               `json:"priority" jsonschema:"minimum=1,maximum=3"`
		Score    float64           `json:"score,omitempty" jsonschema:"exclusiveMinimum=0,exclusiveMaximum=1"`
		Tags     []string          `json:"tags,omitempty" jsonschema:"maxItems=3,pattern=^[a-z]+$"`
		Grid     [][]int8          `json:"grid,omitempty" jsonschema:"minimum=0"`
		Meta     map[string]string `json:"meta,omitempty"`
		Counts   map[string]uint16 `json:"counts,omitempty"`
		Due      *time.Time        `json:"due,omitempty"`
		At       time.Time         `json:"at,omitzero"`
		Owner    *Person           `json:"owner,omitempty"`
		People   []Person          `json:"people,omitempty"`
		Mood     *string           `json:"mood,omitempty" jsonschema:"enum=calm,enum=angry"`
		Ratio    float32           `json:"ratio,omitempty"`
		Big      uint64            `json:"big,omitempty"`
		Flag     *bool             `json:"flag,omitempty"`
		Anything any               `json:"anything,omitempty"`
	}

	Person struct {
		Name  string   `json:"name" jsonschema_description:"Full name, as written"`
		Email string   `json:"email,omitempty"`
		Boss  *Person  `json:"boss,omitempty"`
		Alias []string `json:"alias,omitempty"`
	}
)

func TestRulesInTheSchema(t *testing.T) {
	var s map[string]any
	require.NoError(t, json.Unmarshal(For(reflect.TypeFor[Issue]()), &s))
	props := s["properties"].(map[string]any)
	assert.Equal(t, map[string]any{"type": "string", "minLength": 1.0, "maxLength": 80.0, "description": "One line, no more"}, props["title"])
	assert.Equal(t, map[string]any{"type": "string", "enum": []any{"bug", "feature", "question"}}, props["label"])
	assert.Equal(t, map[string]any{"type": "integer", "minimum": 1.0, "maximum": 3.0}, props["priority"])
	assert.Equal(t, map[string]any{"type": []any{"array", "null"}, "maxItems": 3.0, "items": map[string]any{"type": "string", "pattern": "^[a-z]+$"}}, props["tags"])
	assert.Equal(t, map[string]any{"type": []any{"string", "null"}, "enum": []any{"calm", "angry", nil}}, props["mood"], "a pointer's enum allows null")
	grid := props["grid"].(map[string]any)["items"].(map[string]any)["items"].(map[string]any)
	assert.Equal(t, 0.0, grid["minimum"], "rules reach the innermost items")
	assert.Equal(t, 127.0, grid["maximum"])
	defs := s["$defs"].(map[string]any)
	assert.Equal(t, "Full name, as written", defs["Person"].(map[string]any)["properties"].(map[string]any)["name"].(map[string]any)["description"])
}

func TestRulesAreDecoded(t *testing.T) {
	for _, tc := range []struct{ name, payload, err string }{
		{"ok", `{"title":"x","label":"bug","priority":2}`, ""},
		{"enum", `{"title":"x","label":"chore","priority":2}`, `field "label": want one of "bug", "feature", "question"`},
		{"minimum", `{"title":"x","label":"bug","priority":0}`, `field "priority": want at least 1`},
		{"maximum", `{"title":"x","label":"bug","priority":4}`, `field "priority": want at most 3`},
		{"exclusive", `{"title":"x","label":"bug","priority":1,"score":1}`, `field "score": want less than 1`},
		{"min length", `{"title":"","label":"bug","priority":1}`, `field "title": want at least 1 characters`},
		{"max items", `{"title":"x","label":"bug","priority":1,"tags":["a","b","c","d"]}`, `field "tags": want at most 3 items`},
		{"item pattern", `{"title":"x","label":"bug","priority":1,"tags":["a","B"]}`, `field "tags[1]": want a string matching`},
		{"nested items", `{"title":"x","label":"bug","priority":1,"grid":[[1],[2,-1]]}`, `field "grid[1][1]": want at least 0`},
		{"int8 range", `{"title":"x","label":"bug","priority":1,"grid":[[128]]}`, `field "grid[0][0]"`},
		{"pointer enum null", `{"title":"x","label":"bug","priority":1,"mood":null}`, ""},
		{"pointer enum", `{"title":"x","label":"bug","priority":1,"mood":"sad"}`, `field "mood": want one of`},
		{"float32 range", `{"title":"x","label":"bug","priority":1,"ratio":1e39}`, `field "ratio"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Issue
			err := Decode([]byte(tc.payload), &v)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func TestBadTagsPanicWithTheReason(t *testing.T) {
	type unknownKey struct {
		X int `json:"x" jsonschema:"minimun=1"`
	}
	type badNumber struct {
		X int `json:"x" jsonschema:"maximum=three"`
	}
	type badPattern struct {
		X string `json:"x" jsonschema:"pattern=(["`
	}
	type enumOnStruct struct {
		X struct{} `json:"x" jsonschema:"enum=a"`
	}
	assert.PanicsWithValue(t, `schema: jsonschema tag "minimun=1": unknown key "minimun"`, func() { For(reflect.TypeFor[unknownKey]()) })
	assert.Panics(t, func() { For(reflect.TypeFor[badNumber]()) })
	assert.Panics(t, func() { For(reflect.TypeFor[badPattern]()) })
	assert.Panics(t, func() { For(reflect.TypeFor[enumOnStruct]()) })
}

func TestValidateListsEveryProblem(t *testing.T) {
	v, err := Compile(For(reflect.TypeFor[Issue]()))
	require.NoError(t, err)
	got := v.Validate([]byte(`{"title":"","label":"chore","priority":7.5,"tags":["ok","NO"],"owner":{"name":3,"extra":true},
		"people":[{"name":"a"},{}],"due":"tomorrow","counts":{"a":70000},"surprise":1}`))
	want := []Problem{
		{"/title", "want at least 1 characters, got 0"},
		{"/label", `want one of "bug", "feature", "question"`},
		{"/priority", "want type integer, got the number 7.5"},
		{"/tags/1", `want a string matching "^[a-z]+$"`},
		{"/owner/extra", `unknown member: allowed are "alias", "boss", "email", "name"`},
		{"/owner/name", "want type string, got the number 3"},
		{"/people/1", `missing required member "name"`},
		{"/due", `want an RFC 3339 date and time such as 2025-01-02T15:04:05Z, got "tomorrow"`},
		{"/counts/a", "want at most 65535, got 70000"},
		{"/surprise", "unknown member: allowed are " + allowed(Issue{})},
	}
	assert.ElementsMatch(t, want, got)
}

func allowed(v any) string {
	var names []string
	for _, f := range Fields(reflect.TypeOf(v)) {
		names = append(names, `"`+f.Name+`"`)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestValidateKeywords(t *testing.T) {
	for _, tc := range []struct {
		name, schema, value string
		problems            []string // pointer: message prefix
	}{
		{"true", `true`, `{"a":1}`, nil},
		{"false", `false`, `1`, []string{": no value is allowed"}},
		{"type list", `{"type":["string","null"]}`, `null`, nil},
		{"type", `{"type":"object"}`, `[]`, []string{": want type object, got an array"}},
		{"integer literal", `{"type":"integer"}`, `1.0`, []string{": want type integer"}},
		{"integer exponent", `{"type":"integer"}`, `1e2`, []string{": want type integer"}},
		{"integer too big", `{"type":"integer"}`, `9223372036854775808`, []string{": the integer 9223372036854775808 does not fit 64 bits"}},
		{"unsigned fits", `{"type":"integer","minimum":0}`, `18446744073709551615`, nil},
		{"number out of range", `{"type":"number"}`, `1e400`, []string{": the number 1e400 is out of range"}},
		{"const", `{"const":"x"}`, `"y"`, []string{`: want "x"`}},
		{"ref", `{"$ref":"#/$defs/A","$defs":{"A":{"type":"string"}}}`, `1`, []string{": want type string"}},
		{"bad ref", `{"$ref":"#/$defs/B"}`, `1`, []string{`: the schema's $ref "#/$defs/B" names nothing`}},
		{"anyOf picks the typed branch", `{"anyOf":[{"type":"null"},{"type":"object","required":["a"]}]}`, `{}`, []string{`: missing required member "a"`}},
		{"oneOf two", `{"oneOf":[{"type":"integer"},{"minimum":0}]}`, `1`, []string{": the value fits 2 of the alternatives"}},
		{"not", `{"not":{"type":"string"}}`, `"s"`, []string{": this value is not allowed"}},
		{"allOf", `{"allOf":[{"minLength":2},{"maxLength":3}]}`, `"abcd"`, []string{": want at most 3 characters"}},
		{"prefixItems", `{"prefixItems":[{"type":"string"}],"items":false}`, `["a",1]`, []string{"/1: no value is allowed"}},
		{"unique", `{"uniqueItems":true}`, `[1,2,1.0]`, []string{"/2: a repeat of item 0"}},
		{"multipleOf", `{"multipleOf":0.5}`, `1.25`, []string{": want a multiple of 0.5"}},
		{"pointer escapes", `{"additionalProperties":false}`, `{"a/b~c":1}`, []string{"/a~1b~0c: unknown member"}},
		{"base64", `{"type":"string","contentEncoding":"base64"}`, `"not base64!"`, []string{": want base64"}},
		{"not json", `{}`, `{"a":`, []string{": not JSON"}},
		{"draft 4 exclusive", `{"minimum":1,"exclusiveMinimum":true}`, `1`, []string{": want more than 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Compile(json.RawMessage(tc.schema))
			require.NoError(t, err)
			got := v.Validate([]byte(tc.value))
			require.Len(t, got, len(tc.problems), "%v", got)
			for i, p := range tc.problems {
				ptr, msg, _ := strings.Cut(p, ": ")
				assert.Equal(t, ptr, got[i].Pointer)
				assert.True(t, strings.HasPrefix(got[i].Message, msg), "%q does not start with %q", got[i].Message, msg)
			}
		})
	}
	_, err := Compile(json.RawMessage(`"a string"`))
	assert.ErrorContains(t, err, "not an object or a boolean")
}

// agreementTypes are the types the agreement tests hold the validator and
// the decoder to.
var agreementTypes = map[string]func() any{
	"issue":  func() any { return new(Issue) },
	"person": func() any { return new(Person) },
	"slice":  func() any { return new([]Person) },
	"map":    func() any { return new(map[string][]int16) },
	"time":   func() any { return new(time.Time) },
	"uint8":  func() any { return new(uint8) },
	"ptr":    func() any { return new(*float32) },
	"array":  func() any { return new([2]string) },
}

// agree checks that the schema of target's type accepts data exactly when
// Decode decodes it.
func agree(t *testing.T, target any, data []byte) {
	t.Helper()
	typ := reflect.TypeOf(target).Elem()
	if len(strings.TrimSpace(string(data))) == 0 {
		return // no payload at all stands for {} in Decode: a convention of payloads, not of JSON
	}
	v, err := Compile(For(typ))
	require.NoError(t, err)
	problems := v.Validate(data)
	derr := Decode(data, target)
	if len(problems) == 0 && derr != nil {
		t.Fatalf("%s: the schema accepts %s, the decoder refuses it: %v", typ, data, derr)
	}
	if len(problems) > 0 && derr == nil {
		t.Fatalf("%s: the decoder accepts %s, the schema refuses it: %v", typ, data, problems)
	}
}

var agreementCorpus = []string{
	`{"title":"t","label":"bug","priority":1}`,
	`{"title":"t","label":"feature","priority":3,"score":0.5,"tags":["a"],"grid":[[0,127]],"meta":{"k":"v"},"counts":{"a":65535},
	  "due":"2025-01-02T03:04:05Z","at":"2025-01-02T03:04:05.123+02:00","owner":{"name":"n","boss":{"name":"b"}},"people":[{"name":"p","alias":["x"]}],
	  "mood":"calm","ratio":1.5,"big":18446744073709551615,"flag":true,"anything":[1,{"x":null}]}`,
	`{"title":"t","label":"bug","priority":1,"due":null,"owner":null,"people":null,"tags":null,"meta":null,"mood":null,"flag":null,"anything":null}`,
	`{"title":"t","label":"bug","priority":1,"at":null}`,
	`{"title":"t","label":"bug","priority":1,"at":"2025-13-01T00:00:00Z"}`,
	`{"title":"t","label":"bug","priority":1,"big":-1}`,
	`{"title":"t","label":"bug","priority":1,"big":18446744073709551616}`,
	`{"title":"t","label":"bug","priority":1.0}`,
	`{"title":"t","label":"bug","priority":"1"}`,
	`{"title":"t","label":"Bug","priority":1}`,
	`{"Title":"t","label":"bug","priority":1}`,
	`{"title":"t","label":"bug"}`,
	`{"title":"t","label":"bug","priority":1,"people":[{}]}`,
	`{"title":"t","label":"bug","priority":1,"counts":{"a":65536}}`,
	`{"title":"t","label":"bug","priority":1,"ratio":3.5e38}`,
	`{"title":"t","label":"bug","priority":1,"score":0}`,
	`{"title":"t","label":"bug","priority":1,"grid":[[]],"tags":[]}`,
	`{"title":"t","label":"bug","priority":1,"owner":{"name":"a","boss":{"name":"b","boss":{"name":1}}}}`,
	`{"name":"x"}`, `{"name":"x","boss":null}`, `{"name":null}`, `{}`, `null`, `[]`, `"s"`, `1`, ``,
	`[{"name":"a"},null]`, `[{"name":"a"}]`,
	`{"a":[1,-32768,32767]}`, `{"a":[32768]}`, `{"a":null}`, `{"a":[null]}`,
	`"2025-01-02T03:04:05Z"`, `"2025-01-02"`, `"2025-01-02T03:04:05+25:00"`,
	`255`, `256`, `-1`, `2.0`, `1e2`,
	`1.5`, `null`, `3.5e38`, `"x"`,
	`["a","b"]`, `["a"]`, `["a","b","c"]`, `[1,"b"]`,
}

func TestValidatorAgreesWithDecode(t *testing.T) {
	for name, newTarget := range agreementTypes {
		t.Run(name, func(t *testing.T) {
			for _, data := range agreementCorpus {
				agree(t, newTarget(), []byte(data))
			}
		})
	}
}

func FuzzValidatorAgreesWithDecode(f *testing.F) {
	for _, data := range agreementCorpus {
		for i := range len(agreementTypes) {
			f.Add(uint8(i), data)
		}
	}
	names := make([]string, 0, len(agreementTypes))
	for n := range agreementTypes {
		names = append(names, n)
	}
	sortStrings(names)
	f.Fuzz(func(t *testing.T, which uint8, data string) {
		if strings.Contains(data, "-0") {
			// -0 decodes into a signed integer and not an unsigned one,
			// which no schema keyword tells apart.
			return
		}
		if !json.Valid([]byte(data)) && strings.TrimSpace(data) != "" {
			return // the decoder's JSON parsing is encoding/json's
		}
		agree(t, agreementTypes[names[int(which)%len(names)]](), []byte(data))
	})
}
