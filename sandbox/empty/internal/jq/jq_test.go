//go:build !wasip1

package jq

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const doc = `{"name":"demo","version":"1.2.3","tags":["a","b","c"],"n":3,"pi":3.14159,"nested":{"x":1,"y":{"z":[1,2,{"w":"deep"}]}},
"users":[{"id":1,"name":"Ada","role":"admin","active":true,"age":36},{"id":2,"name":"Bob","role":"dev","active":false,"age":28},{"id":3,"name":"Cy","role":"dev","active":true,"age":41,"email":null}],
"empty":[],"none":null,"text":"Hello, World","csv":"a,b,,c","deps":{"zeta":"1","alpha":"2"}}`

var filters = []string{
	`.`, `.name`, `.nested.y.z[2].w`, `.tags[0]`, `.tags[-1]`, `.tags[1:]`, `.tags[:2]`, `.text[0:5]`, `.users[]`, `.users[].name`,
	`.users[] | select(.active) | .name`, `[.users[] | select(.age > 30) | .id]`, `.users | map(.name)`, `.users | length`,
	`.text | length`, `.deps | keys`, `.deps | keys_unsorted`, `keys`, `.users[0] | to_entries`, `.deps | to_entries | from_entries`,
	`.deps | with_entries(.value |= tonumber)`, `{name, v: .version}`, `{(.name): .n}`, `[.tags[] | ascii_upcase]`, `.tags | join("-")`,
	`.csv | split(",")`, `.users | sort_by(.age) | map(.name)`, `.users | group_by(.role) | map({role: .[0].role, n: length})`,
	`.users | map(.age) | add`, `.users | map(.age) | add / length`, `.users | min_by(.age) | .name`, `.users | max_by(.age).name`,
	`[.users[].role] | unique`, `.users | unique_by(.role) | length`, `.n + 1, .n - 1, .n * 2, .n / 2, .n % 2`, `.pi | floor, ceil, round`,
	`"\(.name) v\(.version)"`, `.users[] | "\(.name) is \(.age)"`, `.none // "default"`, `.missing // .name`, `if .n > 2 then "big" else "small" end`,
	`if .n == 1 then "one" elif .n == 3 then "three" else "other" end`, `.users[] | select(.email == null) | .name`, `.users | map(has("email"))`,
	`.tags | index("b")`, `.text | test("world"; "i")`, `.text | sub("World"; "jq")`, `.text | gsub("l"; "L")`, `.text | ascii_downcase`,
	`reduce .users[] as $u (0; . + $u.age)`, `[range(5)]`, `[range(2; 10; 3)]`, `[limit(2; .users[])] | length`, `first(.users[]).name`,
	`.users | first.name, last.name`, `.nested | paths | join(".")?`, `[paths] | length`, `[leaf_paths] | length`,
	`.users[0] | del(.role)`, `del(.users[1]) | .users | length`, `.n = 10 | .n`, `.n |= . * 10 | .n`, `.n += 5 | .n`, `.tags += ["d"] | .tags`,
	`.users[].age |= . + 1 | [.users[].age]`, `.deps.new = "3" | .deps`, `.users | map(select(.role == "dev") | .id)`, `[.users[] | .name] | reverse`,
	`.tags | contains(["a"])`, `.text | contains("World")`, `[.[] | type] | unique`, `.empty | length`, `.none | length`, `tojson`, `.tags | tojson | fromjson`,
	`[.users[] | {id, name}]`, `.users[] | [.id, .name] | @csv`, `.users[] | [.id, .name] | @tsv`, `.tags | @sh`, `.name | @base64`, `.name | @base64 | @base64d`,
	`@html "<b>\(.name)</b>"`, `.text | @uri`, `[.users[] | .age] | sort | .[length/2|floor]`, `.users | any(.age > 40), all(.active)`, `[.tags[] | select(. != "b")]`,
	`.. | numbers`, `[.. | strings] | length`, `.nested | .. | .w? // empty`, `to_entries | map(select(.value | type == "string")) | from_entries | keys`,
	`.users | map(.name | length) | max`, `[.users[] | .age] | min`, `.version | split(".") | map(tonumber)`, `.n as $x | [$x, $x * $x]`,
	`[.users[] | .name as $n | $n + "!"]`, `[foreach .tags[] as $t (""; . + $t)]`, `.users[1:] | map(.id)`, `.missing`, `.missing?.x`, `[.users[] | .email?]`,
	`try error("boom") catch .`, `[.tags[] | try (if . == "b" then error("x") else . end) catch "caught"]`, `(.tags | length) as $n | $n`, `not`, `.none | not`,
	`[true, false, null, 1, "a"] | map(not)`, `[1, [2, [3, [4]]]] | flatten`, `[1, [2, [3, [4]]]] | flatten(1)`, `{"a":1} * {"a":{"b":2}}`, `{"a":{"b":1}} * {"a":{"c":2}}`,
	`[1,2,3,2,1] - [2]`, `"abc" * 2`, `"a,b" / ","`, `[.tags[] | ltrimstr("a")]`, `"x-y-z" | rtrimstr("-z")`, `.text | startswith("Hello"), endswith("!")`,
	`[.text | explode | .[0:3] | implode]`, `.users | map(select(.name | test("^[AB]")))| length`, `[splits(", ")]?`, `.text | [splits(", ")]`, `getpath(["nested","x"])`,
	`[paths(type == "number")] | length`, `to_entries[0].key`, `.users | map(.id) | @json`, `input_filename?`, `$ENV | type`, `env | type`,
	`walk(if type == "number" then . + 1 else . end) | .n`, `[.users[] | .age] | (add / length) | floor`, `.users | [.[] | select(.active)] | length`, `-.n`, `-(.n + 1)`,
	`[range(10)] | map(select(. % 3 == 0))`, `.users | map(.role) | group_by(.) | map([.[0], length])`, `[.tags, .users[0].name]`, `{a: 1, b: [1, 2]}`, `[.[]?] | length`,
	`.users | to_entries | map("\(.key):\(.value.name)")`, `.nested | to_entries | map(.key)`, `.users | INDEX? // "no INDEX"`, `[1, 2] | .[1] = 5`, `null | .a.b = 1`,
	`[3,1,2] | sort`, `["b","a","B"] | sort`, `[{"a":2},{"a":1}] | sort_by(.a) | .[0].a`, `[1,null,"a",true,[1],{"x":1}] | sort`, `.deps | length`,
	`1e3, 0.5, 100, -2.5, 1e20, 3.0`, `1 / 3`, `[.users[] | .age] | add / 3`, `10000000000000000000`, `"\u00e9"`, `"tab\tnl\n"`, `[.tags[] | . + "!"]`,
}

// TestAgainstJq holds each filter to jq 1.6 on this machine: the same
// outputs (compact), and the same failures.
func TestAgainstJq(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("the differential test needs jq on PATH: %v", err)
	}
	input, ok, err := NewDecoder(doc).Next()
	require.NoError(t, err)
	require.True(t, ok)
	for _, f := range filters {
		t.Run(f, func(t *testing.T) {
			cmd := exec.Command("jq", "-c", f)
			cmd.Stdin = strings.NewReader(doc)
			cmd.Env = []string{"A=1"}
			want, err := cmd.Output()
			jqFailed := err != nil

			prog, perr := Parse(f)
			if perr != nil {
				if strings.Contains(perr.Error(), "is not defined") || strings.Contains(perr.Error(), "not supported") {
					t.Logf("not supported here: %v", perr)
					assert.True(t, jqFailed || len(want) > 0)
					return
				}
				require.NoError(t, perr, "jq accepts it (%s)", want)
			}
			var got strings.Builder
			env := NewObject().With("A", "1")
			rerr := prog.Run(input, Env{Vars: map[string]any{"ENV": env}}, func(v any) error {
				Encode(&got, v, EncodeOpts{})
				got.WriteByte('\n')
				return nil
			})
			if jqFailed {
				var je *Error
				assert.True(t, rerr != nil && errors.As(rerr, &je), "jq fails (%v); so must we, got %q, %v", err, got.String(), rerr)
				assert.Equal(t, string(want), got.String(), "the outputs before the failure")
				return
			}
			require.NoError(t, rerr)
			assert.Equal(t, string(want), got.String())
		})
	}
}

func TestPrettyOutput(t *testing.T) {
	v, _, err := NewDecoder(`{"a":[1,{"b":null}],"c":{},"d":[],"e":"x\"y"}`).Next()
	require.NoError(t, err)
	var b strings.Builder
	Encode(&b, v, EncodeOpts{Indent: "  "})
	cmd := exec.Command("jq", ".")
	cmd.Stdin = strings.NewReader(`{"a":[1,{"b":null}],"c":{},"d":[],"e":"x\"y"}`)
	want, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, string(want), b.String()+"\n")
}

func FuzzJq(f *testing.F) {
	for _, flt := range filters {
		f.Add(flt)
	}
	input, _, _ := NewDecoder(doc).Next()
	f.Fuzz(func(t *testing.T, filter string) {
		prog, err := Parse(filter)
		if err != nil {
			return
		}
		steps := 0
		errSteps := errors.New("steps")
		defer func() {
			if r := recover(); r != nil && r != errSteps {
				panic(r)
			}
		}()
		outputs := 0
		prog.Run(input, Env{Step: func() {
			if steps++; steps > 100000 {
				panic(errSteps)
			}
		}}, func(any) error {
			if outputs++; outputs > 10000 {
				return errors.New("enough")
			}
			return nil
		})
	})
}
