package strictjson

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRejectsAmbiguity(t *testing.T) {
	for name, doc := range map[string]string{
		"duplicate key":          `{"a":1,"a":2}`,
		"duplicate after escape": `{"a":1,"\u0061":2}`,
		"byte order mark":        "\ufeff{}",
		"invalid UTF-8":          "\"\xff\"",
		"lone high surrogate":    `"\ud800"`,
		"lone low surrogate":     `"\udc00"`,
		"reversed surrogates":    `"\udc00\ud800"`,
		"trailing comma":         `[1,]`,
		"trailing data":          `{} x`,
		"leading zero":           `01`,
		"bare dot":               `1.`,
		"control in string":      "\"a\nb\"",
		"single quotes":          `{'a':1}`,
		"NaN":                    `NaN`,
		"deep":                   strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2),
		"empty":                  ``,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(doc))
			require.Error(t, err)
		})
	}
}

func TestParseAndPointer(t *testing.T) {
	v, err := Parse([]byte(` {"a/b":{"m~n":[10, "x\ud83d\ude00", true, null]}, "": 1} `))
	require.NoError(t, err)
	for ptr, want := range map[string]string{
		"/a~1b/m~0n/0": "10",
		"/a~1b/m~0n/1": "x\U0001F600",
		"/a~1b/m~0n/2": "true",
		"/":            "1",
	} {
		got, ok := Pointer(v, ptr)
		require.True(t, ok, ptr)
		require.Equal(t, want, got.Str, ptr)
	}
	for _, ptr := range []string{"/a~1b/m~0n/01", "/a~1b/m~0n/4", "/a/b", "/a~2b", "x", "/a~1b/m~0n/-"} {
		_, ok := Pointer(v, ptr)
		require.False(t, ok, ptr)
	}
	require.True(t, ValidPointer(""))
	require.False(t, ValidPointer("/a~"))
}

func TestEqualNumbers(t *testing.T) {
	num := func(s string) *Value { return &Value{Kind: Number, Str: s} }
	for _, pair := range [][2]string{{"1", "1.0"}, {"10", "1e1"}, {"0.1E1", "1"}, {"-0", "0"}, {"1.50", "15e-1"}} {
		require.True(t, Equal(num(pair[0]), num(pair[1])), pair)
	}
	for _, pair := range [][2]string{{"9007199254740993", "9007199254740992"}, {"1", "-1"}, {"1e400", "1e401"}} {
		require.False(t, Equal(num(pair[0]), num(pair[1])), pair)
	}
	a, _ := Parse([]byte(`{"x":[1,{"y":2}],"z":null}`))
	b, _ := Parse([]byte(`{"z":null,"x":[1.0,{"y":2e0}]}`))
	require.True(t, Equal(a, b))
	c, _ := Parse([]byte(`{"z":null,"x":[{"y":2},1]}`))
	require.False(t, Equal(a, c))
}
