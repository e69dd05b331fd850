package graphql

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
	gqlparser "github.com/vektah/gqlparser/v2/parser"
)

// seeds are documents gqlparser accepts and refuses, for the table test and
// the fuzz target's corpus.
var seeds = []string{
	`{ viewer { login } }`,
	`query { a }`,
	`query Q($id: ID!, $n: [Int!]! = [1, 2], "d" $o: In = {a: {b: [null, true, ENUM, "s", """b""", 1.5e3]}} @x) @d(a: $id) { a: b(c: $n) @skip(if: true) { ...F ... on T { c } ... @include(if: false) { d } } }`,
	`mutation M { addStar(input: {starrableId: "x"}) { clientMutationId } } subscription S { s }`,
	`fragment F on User { id } query { ...F }`,
	`fragment F($v: Int) on User @d { id }`,
	`"described" query Q { a } """block""" mutation { b }`,
	`# only a comment`,
	"\ufeff{ a }, # trailing\r\n",
	`{ a(s: "\u00e9\u{1F600}\ud83d\ude00\"\\\/\b\f\n\r\t") }`,
	"{ a(s: \"\"\"\n    on\n  \"\"\") ... \"on\" T { b } }",
	`{ ... """on""" T { b } }`,
	`{ a(n: 0, m: -1.0, e: 1E+5, x: 0x) }`,
	`{ a(v: """ \""" """"") }`,
	``,
	`{}`,
	`query Q() { a }`,
	`{ a() }`,
	`"d" { a }`,
	`fragment on on T { a }`,
	`{ ...on }`,
	`{ ... on T }`,
	`query ($v: Int = $w) { a }`,
	`{ a(n: 01) }`,
	`{ a(n: 1.) }`,
	`{ a(n: 1e) }`,
	`{ a(n: -) }`,
	`{ a(s: "unterminated) }`,
	"{ a(s: \"line\nbreak\") }",
	`{ a(s: "\x") }`,
	`{ a(s: "\u{}") }`,
	`{ a(s: "\u{110000}") }`,
	`{ a(s: "\u{D800}") }`,
	`{ a(s: "\u12") }`,
	`{ a .. }`,
	`{ a } extra`,
	`type T { a: Int }`,
	`{ a(v: [1 2 {}]) @ }`,
	"{ a(s: \"\x01\") }",
	"{ a } \x00",
	`query Q($a: [[Int]!]) { b }`,
	`'single'`,
	`{ a | b & c }`,
	`query Q @d(a: 1) @e { a }`,
	`{ a(v: {}) }`,
}

func gqlparserOps(doc string, maxTokens int) ([]Operation, error) {
	d, err := gqlparser.ParseQueryWithTokenLimit(&ast.Source{Input: doc}, maxTokens)
	if err != nil {
		return nil, err
	}
	var ops []Operation
	for _, op := range d.Operations {
		ops = append(ops, Operation{Kind: string(op.Operation), Name: op.Name})
	}
	return ops, nil
}

func TestOperations(t *testing.T) {
	tests := []struct {
		doc  string
		want []Operation
	}{
		{`{ a }`, []Operation{{Kind: Query}}},
		{`query Q { a } mutation M { b } subscription { c } fragment F on T { d }`,
			[]Operation{{Query, "Q"}, {Mutation, "M"}, {Subscription, ""}}},
		{`"d" mutation Star($id: ID!) { addStar(id: $id) { ok } }`, []Operation{{Mutation, "Star"}}},
		{`fragment F on T { a }`, nil},
		{``, nil},
	}
	for _, tt := range tests {
		got, err := Operations(tt.doc, 0)
		require.NoError(t, err, tt.doc)
		assert.Equal(t, tt.want, got, tt.doc)
	}
}

// TestSameAsGqlparser holds the seeds to gqlparser's answers.
func TestSameAsGqlparser(t *testing.T) {
	for _, doc := range seeds {
		want, wantErr := gqlparserOps(doc, 0)
		got, err := Operations(doc, 0)
		assert.Equal(t, wantErr == nil, err == nil, "%q: gqlparser says %v, we say %v", doc, wantErr, err)
		assert.Equal(t, want, got, doc)
	}
}

func TestTokenLimit(t *testing.T) {
	doc := "# one\n{ a b }" // 5 tokens with the comment
	for limit := 1; limit <= 6; limit++ {
		_, wantErr := gqlparserOps(doc, limit)
		_, err := Operations(doc, limit)
		assert.Equal(t, wantErr == nil, err == nil, "limit %d", limit)
	}
	_, err := Operations(doc, 4)
	require.Error(t, err)
	_, err = Operations(doc, 5)
	require.NoError(t, err)
}

func TestNesting(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		sel := strings.Repeat("{ a ", depth) + strings.Repeat("}", depth)
		list := "{ a(v: " + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + ") }"
		typ := "query ($v: " + strings.Repeat("[", depth) + "Int" + strings.Repeat("]", depth) + ") { a }"
		for _, doc := range []string{sel, list, typ} {
			_, wantErr := gqlparserOps(doc, 0)
			_, err := Operations(doc, 0)
			assert.Equal(t, wantErr == nil, err == nil, "depth %d: %.40s", depth, doc)
		}
	}
	_, err := Operations(strings.Repeat("{ a ", maxDepth+1)+strings.Repeat("}", maxDepth+1), 0)
	require.Error(t, err)
}

// FuzzSameAsGqlparser: every document gets gqlparser's answer (accepted or
// not, and the same operations), also under a small token limit.
func FuzzSameAsGqlparser(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, 0)
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, doc string, limit int) {
		if limit < 0 || limit > 1000 {
			limit = 0
		}
		want, wantErr := gqlparserOps(doc, limit)
		got, err := Operations(doc, limit)
		if (wantErr == nil) != (err == nil) {
			t.Fatalf("%q (limit %d): gqlparser says %v, we say %v", doc, limit, wantErr, err)
		}
		assert.Equal(t, want, got)
	})
}
