package policy

import (
	"errors"
	"regexp"
	"strings"

	"github.com/damperdev/damper/policy/internal/graphql"

	"github.com/damperdev/damper/policy/internal/strictjson"
)

// maxGraphQLTokens bounds the work one document costs to parse.
const maxGraphQLTokens = 50000

// requestBody parses a request body at most once per decision, and only when
// a rule that inspects bodies gets that far.
type requestBody struct {
	raw         []byte
	contentType string
	urlQuery    string // the canonical query string
	parsed      bool
	value       *strictjson.Value
	err         error
	gqlParsed   bool
	ops         []graphql.Operation
	gqlErr      error
}

var (
	errContentType = errors.New("body is not declared as JSON")
	errNoQuery     = errors.New(`GraphQL request without a "query" string`)
	errNoOps       = errors.New("GraphQL document without operations")
	errEmptyBatch  = errors.New("empty GraphQL batch")
	errURLParams   = errors.New("GraphQL parameters in the URL of a request with a body")
)

// graphqlURLParams are the GraphQL-over-HTTP request parameters. Some
// servers read them from the URL even on a POST, and prefer them to the
// body's, so a body can only be trusted when the URL carries none.
var graphqlURLParams = []string{"query", "operationName", "variables", "extensions"}

// hasGraphQLURLParams splits the query on ';' as well as '&', as some
// servers do: a parameter hidden behind a ';' under one reading is a
// parameter under the other.
func hasGraphQLURLParams(query string) bool {
	for query != "" {
		pair := query
		if i := strings.IndexAny(query, "&;"); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = ""
		}
		key, _, _ := strings.Cut(pair, "=")
		for _, p := range graphqlURLParams {
			if decodedEqual(key, p) {
				return true
			}
		}
	}
	return false
}

func (b *requestBody) json() (*strictjson.Value, error) {
	if !b.parsed {
		b.parsed = true
		if !jsonContentType(b.contentType) {
			b.err = errContentType
		} else {
			b.value, b.err = strictjson.Parse(b.raw)
		}
	}
	return b.value, b.err
}

// jsonContentType accepts no Content-Type or a JSON media type in UTF-8. A
// server may read any other type (application/graphql, a form, another
// charset) in a way the JSON matchers cannot see.
func jsonContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, params, _ := strings.Cut(ct, ";")
	mt = trimSpace(mt)
	json := asciiEqualFold(mt, "application/json") ||
		len(mt) > len("application/+json") && hasPrefixFold(mt, "application/") &&
			asciiEqualFold(mt[len(mt)-len("+json"):], "+json")
	if !json {
		return false
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if asciiEqualFold(trimSpace(k), "charset") {
			v = strings.Trim(trimSpace(v), `"`)
			if !asciiEqualFold(v, "utf-8") && !asciiEqualFold(v, "utf8") {
				return false
			}
		}
	}
	return true
}

func trimSpace(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// graphql returns every operation of every document in the body: one
// request object or a batched array of them. operationName is ignored on
// purpose: a server may run another operation than the one it names.
func (b *requestBody) graphql() ([]graphql.Operation, error) {
	if b.gqlParsed {
		return b.ops, b.gqlErr
	}
	b.gqlParsed = true
	if hasGraphQLURLParams(b.urlQuery) {
		b.gqlErr = errURLParams
		return nil, b.gqlErr
	}
	v, err := b.json()
	if err != nil {
		b.gqlErr = err
		return nil, err
	}
	items := []*strictjson.Value{v}
	if v.Kind == strictjson.Array {
		items = v.Items
		if len(items) == 0 {
			b.gqlErr = errEmptyBatch
			return nil, b.gqlErr
		}
	}
	for _, it := range items {
		q := it.Get("query")
		if q == nil || q.Kind != strictjson.String {
			b.gqlErr = errNoQuery
			return nil, b.gqlErr
		}
		ops, err := graphql.Operations(q.Str, maxGraphQLTokens)
		if err != nil {
			b.gqlErr = err
			return nil, err
		}
		if len(ops) == 0 {
			b.gqlErr = errNoOps
			return nil, b.gqlErr
		}
		b.ops = append(b.ops, ops...)
	}
	return b.ops, nil
}

// bodyMatcher is a compiled BodyMatch.
type bodyMatcher struct {
	pointer string
	absent  bool
	oneOf   []*strictjson.Value
	pattern *regexp.Regexp
}

func (m *bodyMatcher) match(doc *strictjson.Value) bool {
	v, ok := strictjson.Pointer(doc, m.pointer)
	if m.absent {
		return !ok
	}
	if !ok {
		return false
	}
	if m.pattern != nil {
		return v.Kind == strictjson.String && m.pattern.MatchString(v.Str)
	}
	if len(m.oneOf) == 0 {
		return true
	}
	for _, want := range m.oneOf {
		if strictjson.Equal(v, want) {
			return true
		}
	}
	return false
}

// graphqlMatcher is a compiled GraphQLMatch.
type graphqlMatcher struct {
	ops   []string // graphql.Query, Mutation or Subscription
	names []string
}

func (m *graphqlMatcher) fits(op graphql.Operation) bool {
	kindOK := false
	for _, k := range m.ops {
		if k == op.Kind {
			kindOK = true
			break
		}
	}
	if !kindOK {
		return false
	}
	if len(m.names) == 0 {
		return true
	}
	for _, n := range m.names {
		if n == op.Name {
			return true
		}
	}
	return false
}

// matchBody applies a rule's body matchers. An allow rule matches when the
// body can be read and every matcher holds (for GraphQL: every operation
// fits). A deny rule matches when the body cannot be read, or when every
// JSON matcher holds and, for GraphQL, any operation fits. Both directions
// fail closed. An empty body has nothing to inspect: no body rule matches it.
func (r *rule) matchBody(b *requestBody, deny bool) bool {
	if (len(r.body) > 0 || r.graphql != nil) && len(b.raw) == 0 {
		return false
	}
	if len(r.body) > 0 {
		doc, err := b.json()
		if err != nil {
			return deny
		}
		for i := range r.body {
			if !r.body[i].match(doc) {
				return false
			}
		}
	}
	if r.graphql != nil {
		ops, err := b.graphql()
		if err != nil {
			return deny
		}
		for _, op := range ops {
			fits := r.graphql.fits(op)
			if deny && fits {
				return true
			}
			if !deny && !fits {
				return false
			}
		}
		return !deny
	}
	return true
}
