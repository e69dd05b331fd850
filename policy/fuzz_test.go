package policy

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

var fuzzURLSeeds = []string{
	"https://api.github.com/repos/o/r",
	"HTTPS://API.GitHub.com.:443/a/./b/../c//d?%7e=1#f",
	"https://example.test/%2e%2E/%2F/%5c",
	"http://0x7f.1:8080/x",
	"http://[::ffff:127.0.0.1]/",
	"https://api\u3002github\u3002com/",
	"https://user:pass@example.test/",
	"https://example.test/a%252e",
	"https://xn--bcher-kva.example/caf\u00e9?q=\u20ac",
	"https://example.test/a;b/..;/c",
	"https://example.test/?a=%00",
	"https://1.2.3.256/",
}

// FuzzCanonicalize checks what the engine and hosts rely on: canonical URLs
// are fixed points, hold no dot segments, empty segments, lower-case or
// unreserved escapes, and are read the same way by Go's net/url.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range fuzzURLSeeds {
		f.Add(s)
	}
	e, err := Compile(Policy{Version: Version, Services: []Service{
		{Name: "plain", Target: "https://example.test", Level: AllowAll},
		{Name: "opaque", Target: "https://opaque.test", Level: AllowAll, OpaqueEncodedSlash: true},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := canonicalize(raw, nil)
		if err != nil {
			return
		}
		c := u.url
		again, err := canonicalize(c, nil)
		if err != nil || again.url != c {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", raw, c, again.url, err)
		}
		if !IsCanonical(c) {
			t.Fatalf("IsCanonical(%q) is false", c)
		}
		path := u.path()
		if !strings.HasPrefix(path, "/") {
			t.Fatalf("%q: path %q", c, path)
		}
		for _, bad := range []string{"/../", "/./", "//"} {
			if strings.Contains(path, bad) {
				t.Fatalf("%q: path holds %q", c, bad)
			}
		}
		if strings.HasSuffix(path, "/..") || strings.HasSuffix(path, "/.") {
			t.Fatalf("%q: path ends in a dot segment", c)
		}
		for i := 0; i < len(c); i++ {
			ch := c[i]
			if ch <= ' ' || ch >= 0x7f || strings.IndexByte("\\#\"<>`{}|^", ch) >= 0 {
				t.Fatalf("%q holds %q", c, ch)
			}
			if ch == '%' {
				v, ok := unhex2(c, i)
				if !ok || isUnreserved(v) || c[i+1:i+3] != strings.ToUpper(c[i+1:i+3]) {
					t.Fatalf("%q: escape %q is not normal", c, c[i:min(i+3, len(c))])
				}
			}
		}
		if strings.Contains(path, "%2F") != u.encodedSlash {
			t.Fatalf("%q: encodedSlash %v", c, u.encodedSlash)
		}
		gu, err := url.Parse(c)
		if err != nil {
			t.Fatalf("net/url cannot parse canonical %q: %v", c, err)
		}
		if gu.Host != c[len(gu.Scheme)+3:u.pathStart] || gu.User != nil || gu.Fragment != "" {
			t.Fatalf("net/url reads %q as host %q", c, gu.Host)
		}
		if r, err := ResolveReference(c, "#x"); err != nil || r != c {
			t.Fatalf("ResolveReference(%q, #x) = %q, %v", c, r, err)
		}

		// The engine sends %2F in a path only to a service that keeps it
		// opaque.
		d := e.Evaluate(&Request{URL: raw}, nil)
		sentPath, _, _ := strings.Cut(d.URL[min(len(d.URL), u.pathStart):], "?")
		if d.Allow && strings.Contains(sentPath, "%2F") && d.Service != "opaque" {
			t.Fatalf("%q allowed with %%2F in the path for %s", d.URL, d.Service)
		}
		if d.URL != "" && d.URL != c {
			t.Fatalf("engine decided on %q, canonicalize gives %q", d.URL, c)
		}
	})
}

// globRegexp is an independent reading of a compiled glob, for FuzzGlob to
// compare the backtracking matcher with.
func globRegexp(g *glob) *regexp.Regexp {
	sep := regexp.QuoteMeta(string(g.sep))
	not := "[^" + sep + "]"
	var b strings.Builder
	if g.fold {
		b.WriteString("(?i)")
	}
	b.WriteString("^")
	for _, s := range g.segs {
		switch s.kind {
		case segLiteral:
			b.WriteString(sep + regexp.QuoteMeta(s.lit))
		case segStar:
			b.WriteString(sep + not + "+")
		case segAny:
			b.WriteString("(?:" + sep + not + "*)*")
		case segWild:
			b.WriteString(sep)
			for i, p := range s.pieces {
				if i > 0 {
					b.WriteString(not + "*")
				}
				b.WriteString(regexp.QuoteMeta(p))
			}
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// FuzzGlob checks the glob matcher against a regular expression built from
// the same pattern, on canonical paths and hosts.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"/repos/*/*/issues", "/repos/a/b/issues"},
		{"/**/git-receive-pack", "/a/b.git/git-receive-pack/"},
		{"/a/**/b/**", "/a/x/b/y/b"},
		{"/*.git/**", "/x.GIT/info/refs"},
		{"/v1/*:generate*", "/v1/m:generateContent"},
		{"/", "/"},
		{"/**", "/"},
		{"*.example.test", "a.example.test"},
		{"**.example.test", "example.test"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, pattern, subject string, fold bool) {
		var g *glob
		var err error
		var canon string
		if strings.HasPrefix(pattern, "/") {
			if g, err = compilePathGlob(pattern, fold); err != nil {
				return
			}
			u, err := canonicalize("https://x.test/"+strings.TrimPrefix(subject, "/"), nil)
			if err != nil {
				return
			}
			canon = u.path()
			if len(canon) > 1 {
				canon = strings.TrimSuffix(canon, "/")
			}
		} else {
			if g, err = compileHostGlob(pattern); err != nil {
				return
			}
			u, err := canonicalize("https://"+subject+"/", nil)
			if err != nil || u.ip {
				return
			}
			canon = "." + u.host()
		}
		got := g.match(strings.TrimPrefix(canon, "."))
		want := globRegexp(g).MatchString(canon)
		if got != want {
			t.Fatalf("glob %q on %q: matcher %v, regexp %v", pattern, canon, got, want)
		}
	})
}

// FuzzGraphQL checks that a query-only allow rule never lets a mutation or a
// subscription through, and that a mutation deny rule never misses one,
// whatever the body looks like. The oracle reads the body with
// encoding/json, independently of the engine's strict parser.
func FuzzGraphQL(f *testing.F) {
	for _, s := range []string{
		`{"query":"query { a }"}`,
		`{"query":"{ a } mutation { b }"}`,
		`{"query":"# q\nmutation { b }"}`,
		`[{"query":"query { a }"},{"query":"mutation { b }"}]`,
		`{"query":"query A { a } mutation B { b }","operationName":"A"}`,
		`{"query":"query { a }","query":"mutation { b }"}`,
		"\ufeff{\"query\":\"query { a }\"}",
		`{"query":"subscription { s }"}`,
		`{"query":"fragment F on Q { a } query { ...F }"}`,
		`{"query":"\u006dutation { b }"}`,
	} {
		f.Add([]byte(s))
	}
	compileOne := func(s Service) *Engine {
		e, err := Compile(Policy{Version: Version, Services: []Service{s}})
		if err != nil {
			f.Fatal(err)
		}
		return e
	}
	allowQueries := compileOne(Service{Name: "q", Target: "https://gql.test", Level: DenyAll,
		Allow: []Rule{{Path: "/graphql", Methods: []string{"POST"}, GraphQL: &GraphQLMatch{Operations: []string{"query"}}}}})
	denyMutations := compileOne(Service{Name: "m", Target: "https://gql.test", Level: AllowAll,
		Deny: []Rule{{Path: "/graphql", Methods: []string{"POST"}, GraphQL: &GraphQLMatch{Operations: []string{"mutation", "subscription"}}}}})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &Request{Method: "POST", URL: "https://gql.test/graphql", Body: body}
		a := allowQueries.Evaluate(req, nil)
		d := denyMutations.Evaluate(req, nil)
		if !a.Allow && !d.Allow {
			return
		}
		if a.Allow && !d.Allow {
			t.Fatalf("query-only rule allows what the mutation rule denies: %q", body)
		}
		if len(body) == 0 {
			return // nothing for a server to run
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("allowed a body encoding/json rejects: %q: %v", body, err)
		}
		items, ok := v.([]any)
		if !ok {
			items = []any{v}
		}
		for _, it := range items {
			obj, _ := it.(map[string]any)
			q, ok := obj["query"].(string)
			if !ok {
				t.Fatalf("allowed a request without a query string: %q", body)
			}
			doc, err := parser.ParseQuery(&ast.Source{Input: q})
			if err != nil {
				t.Fatalf("allowed a document that does not parse: %q: %v", q, err)
			}
			for _, op := range doc.Operations {
				if op.Operation != ast.Query {
					t.Fatalf("allowed a %s: %q", op.Operation, body)
				}
			}
		}
	})
}

// queryReadings are the ways servers split a query into parameters: on '&'
// alone, and on '&' and ';'. Each reading maps a decoded key to its decoded
// values, as url.QueryUnescape reads them, independently of the engine.
func queryReadings(t *testing.T, query string) []map[string][]string {
	var out []map[string][]string
	for _, seps := range []string{"&", "&;"} {
		r := map[string][]string{}
		for _, pair := range strings.FieldsFunc(query, func(c rune) bool { return strings.ContainsRune(seps, c) }) {
			k, v, _ := strings.Cut(pair, "=")
			dk, err1 := url.QueryUnescape(k)
			dv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				t.Fatalf("canonical query %q does not decode: %v %v", query, err1, err2)
			}
			r[dk] = append(r[dk], dv)
		}
		out = append(out, r)
	}
	return out
}

// FuzzQuery checks query constraints against every reading of the query: an
// allow rule for q=foo allows only when every reading has q and every value
// of q is foo; a deny rule for format=csv lets a request through only when
// no reading has format=csv; a GraphQL body is trusted only when no reading
// has a GraphQL parameter in the URL.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"q=foo", "q=foo&x=1", "q=foo;q=bar", "q=foo&x=1;q=evil", "x=1;q=foo", "x=1;y=2&q=f%6Fo",
		"q=foo%3Bq%3Dbar", "q=foo&q=foo", "Q=foo", "q=fo+o", "q", "q=",
		"format=json;format=csv", "x=1;format=csv", "%66ormat=csv", "format=csv&format=json",
		"trace=1;query=mutation%7Bb%7D", "query=a;query=b", "a%3Bquery=x", ";;&&;=",
	} {
		f.Add(s)
	}
	compileOne := func(s Service) *Engine {
		e, err := Compile(Policy{Version: Version, Services: []Service{s}})
		if err != nil {
			f.Fatal(err)
		}
		return e
	}
	allowQ := compileOne(Service{Name: "a", Target: "https://q.test", Level: DenyAll,
		Allow: []Rule{{Path: "/**", Query: []QueryMatch{{Key: "q", OneOf: []string{"foo"}}}}}})
	denyCSV := compileOne(Service{Name: "d", Target: "https://q.test", Level: AllowAll,
		Deny: []Rule{{Path: "/**", Query: []QueryMatch{{Key: "format", OneOf: []string{"csv"}}}}}})
	gql := compileOne(Service{Name: "g", Target: "https://q.test", Level: DenyAll,
		Allow: []Rule{{Path: "/**", GraphQL: &GraphQLMatch{Operations: []string{"query"}}}}})
	f.Fuzz(func(t *testing.T, query string) {
		req := &Request{URL: "https://q.test/x?" + query}
		a := allowQ.Evaluate(req, nil)
		if a.URL == "" {
			return // no canonical form: denied before any rule
		}
		_, canonQuery, _ := strings.Cut(a.URL, "?")
		readings := queryReadings(t, canonQuery)
		if a.Allow {
			for _, r := range readings {
				if len(r["q"]) == 0 {
					t.Fatalf("allowed %q: a reading has no q: %v", a.URL, r)
				}
				for _, v := range r["q"] {
					if v != "foo" {
						t.Fatalf("allowed %q: a reading has q=%q", a.URL, v)
					}
				}
			}
		}
		if denyCSV.Evaluate(req, nil).Allow {
			for _, r := range readings {
				for _, v := range r["format"] {
					if v == "csv" {
						t.Fatalf("let %q through: a reading has format=csv", a.URL)
					}
				}
			}
		}
		body := &Request{Method: "POST", URL: req.URL, Body: []byte(`{"query":"query { a }"}`)}
		if gql.Evaluate(body, nil).Allow {
			for _, r := range readings {
				for _, p := range graphqlURLParams {
					if _, ok := r[p]; ok {
						t.Fatalf("trusted the body of %q: a reading has %s in the URL", a.URL, p)
					}
				}
			}
		}
	})
}
