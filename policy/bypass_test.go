package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

// A row is one request against the fixture policy and how it must be
// decided. Rows with allow false are bypass attempts; rows with allow true
// are the legitimate requests of the same shapes.
type row struct {
	allow   bool
	reason  policy.Reason
	method  string
	url     string
	base    string // url is a redirect Location resolved against base
	headers []policy.Header
	body    string
	rule    string
	canon   string
}

type opt func(*row)

func hdr(name, value string) opt {
	return func(r *row) { r.headers = append(r.headers, policy.Header{Name: name, Value: value}) }
}

// jsonBody sets a body with Content-Type application/json.
func jsonBody(b string) opt {
	return func(r *row) {
		r.body = b
		r.headers = append(r.headers, policy.Header{Name: "Content-Type", Value: "application/json"})
	}
}

func rawBody(b string) opt         { return func(r *row) { r.body = b } }
func rule(id string) opt           { return func(r *row) { r.rule = id } }
func canon(u string) opt           { return func(r *row) { r.canon = u } }
func redirectFrom(base string) opt { return func(r *row) { r.base = base } }

func deny(reason policy.Reason, method, url string, opts ...opt) row {
	r := row{reason: reason, method: method, url: url}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func allow(reason policy.Reason, method, url string, opts ...opt) row {
	r := deny(reason, method, url, opts...)
	r.allow = true
	return r
}

const (
	gh     = "https://api.github.com"
	git    = "https://github.com"
	shop   = "https://api.shop.test"
	gitlab = "https://gitlab.example.test"
	fake   = "http://127.0.0.1:8080"
)

const (
	rAllow  = policy.ReasonAllowRule
	rLevel  = policy.ReasonAllowLevel
	dRule   = policy.ReasonDenyRule
	dLevel  = policy.ReasonDenyLevel
	dNoSvc  = policy.ReasonNoService
	dURL    = policy.ReasonBadURL
	dIP     = policy.ReasonIPLiteral
	dSlash  = policy.ReasonEncodedSlash
	dMO     = policy.ReasonMethodOverride
	dPH     = policy.ReasonPlaceholder
	dHeader = policy.ReasonBadHeader
	dMethod = policy.ReasonBadMethod
)

var table = []row{
	// GitHub API, read-only: methods.
	allow(rLevel, "GET", gh+"/repos/octo/hello", canon(gh+"/repos/octo/hello")),
	allow(rLevel, "HEAD", gh+"/repos/octo/hello"),
	allow(rLevel, "OPTIONS", gh+"/repos/octo/hello"),
	allow(rLevel, "get", gh+"/user"),
	allow(rLevel, "gEt", gh+"/user"),
	deny(dLevel, "POST", gh+"/repos/octo/hello/issues"),
	deny(dLevel, "post", gh+"/repos/octo/hello/issues"),
	deny(dLevel, "PoSt", gh+"/repos/octo/hello/issues"),
	deny(dLevel, "PUT", gh+"/repos/octo/hello/contents/a.txt"),
	deny(dLevel, "PATCH", gh+"/repos/octo/hello"),
	deny(dLevel, "patch", gh+"/repos/octo/hello"),
	deny(dLevel, "DELETE", gh+"/repos/octo/hello"),
	deny(dLevel, "delete", gh+"/repos/octo/hello"),
	deny(dLevel, "PROPFIND", gh+"/repos/octo/hello"),
	// allow-read allows reads without a body only.
	deny(dLevel, "GET", gh+"/repos/octo/hello", jsonBody(`{"state":"closed"}`)),
	deny(dLevel, "GET", gh+"/repos/octo/hello", rawBody("x")),
	deny(dLevel, "get", gh+"/repos/octo/hello", rawBody("x")),
	deny(dLevel, "HEAD", gh+"/repos/octo/hello", rawBody("x")),
	deny(dLevel, "OPTIONS", gh+"/repos/octo/hello", rawBody("x")),
	deny(dLevel, "GET", gh+"/search/issues?q=x", hdr("Content-Type", "application/x-www-form-urlencoded"), rawBody("q=y")),
	allow(rLevel, "GET", gh+"/repos/octo/hello", hdr("Content-Type", "application/json")),
	allow(rLevel, "GET", gh+"/search/issues?q=x"),
	deny(dMethod, "CONNECT", gh+"/"),
	deny(dMethod, "TRACE", gh+"/"),
	deny(dMethod, "GET ", gh+"/"),
	deny(dMethod, "G\x00ET", gh+"/"),
	deny(dMethod, "GET\r\nX-Injected: 1", gh+"/"),

	// GitHub API: method overrides.
	deny(dMO, "GET", gh+"/repos/octo/hello", hdr("X-HTTP-Method-Override", "DELETE")),
	deny(dMO, "GET", gh+"/repos/octo/hello", hdr("x-http-method-override", "DELETE")),
	deny(dMO, "GET", gh+"/repos/octo/hello", hdr("X-HTTP-Method", "PUT")),
	deny(dMO, "GET", gh+"/repos/octo/hello", hdr("X-Method-Override", "PATCH")),
	deny(dMO, "HEAD", gh+"/repos/octo/hello", hdr("X-Http-Method-Override", "POST")),
	deny(dMO, "POST", gh+"/graphql", jsonBody(gql("query { viewer { login } }")), hdr("X-HTTP-Method-Override", "GET")),

	// GitHub API: spellings of scheme, host and port.
	allow(rLevel, "GET", "HTTPS://API.GITHUB.COM/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://Api.GitHub.Com/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com./user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com:443/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com:0443/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com:/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com", canon(gh+"/")),
	allow(rLevel, "GET", "https://api.github.com?per_page=1", canon(gh+"/?per_page=1")),
	allow(rLevel, "GET", "https://api\u3002github\u3002com/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api\uff0egithub\uff0ecom/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.github.com\uff61/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://\uff21\uff30\uff29.github.com/user", canon(gh+"/user")),
	allow(rLevel, "GET", "https://api.git\u00adhub.com/user", canon(gh+"/user")),
	allow(rLevel, "GET", gh+"/user#fragment", canon(gh+"/user")),
	allow(rLevel, "GET", gh+"/user#@evil.test/", canon(gh+"/user")),
	deny(dNoSvc, "GET", "http://api.github.com/user"),
	deny(dNoSvc, "GET", "https://api.github.com:8443/user"),
	deny(dNoSvc, "GET", "https://api.github.com:80/user"),
	deny(dNoSvc, "GET", "https://api.github.com.evil.test/user"),
	deny(dNoSvc, "GET", "https://api.github.com\u3002evil.test/user"),
	deny(dNoSvc, "GET", "https://evil.test/api.github.com/user"),
	deny(dNoSvc, "GET", "https://evil.test#@api.github.com/user"),
	deny(dNoSvc, "GET", "https://evil.test?@api.github.com/user"),
	deny(dNoSvc, "GET", "https://evilapi.github.com/user"),
	deny(dNoSvc, "GET", "https://api.github.co/user"),
	deny(dNoSvc, "GET", "https://\u0430pi.github.com/user"), // Cyrillic a
	deny(dNoSvc, "GET", "https://xn--pi-7kc.github.com/user"),
	deny(dURL, "GET", "https://api.github.com..//user"),
	deny(dURL, "GET", "https://.api.github.com/user"),
	deny(dURL, "GET", "https://api..github.com/user"),
	deny(dURL, "GET", "https://api.github.com@evil.test/user"),
	deny(dURL, "GET", "https://evil.test@api.github.com/user"),
	deny(dURL, "GET", "https://user:pass@api.github.com/user"),
	deny(dURL, "GET", "https://:@api.github.com/user"),
	deny(dURL, "GET", "https://api.github.com:443@evil.test/user"),
	deny(dURL, "GET", "https://api.github.com%2eevil.test/user"),
	deny(dURL, "GET", "https://api%2egithub%2ecom/user"),
	deny(dURL, "GET", "https://api.github.com\\@evil.test/user"),
	deny(dURL, "GET", "https:\\\\api.github.com/user"),
	deny(dURL, "GET", "https:api.github.com/user"),
	deny(dURL, "GET", "https:/api.github.com/user"),
	deny(dURL, "GET", "https:///api.github.com/user"),
	deny(dURL, "GET", "//api.github.com/user"),
	deny(dURL, "GET", "api.github.com/user"),
	deny(dURL, "GET", " https://api.github.com/user"),
	deny(dURL, "GET", "https://api.github.com/user "),
	deny(dURL, "GET", "https://api.git\thub.com/user"),
	deny(dURL, "GET", "https://api.github.com/us\ner"),
	deny(dURL, "GET", "https://api.github.com/user\x00"),
	deny(dURL, "GET", "https://api.github.com:0/user"),
	deny(dURL, "GET", "https://api.github.com:65536/user"),
	deny(dURL, "GET", "https://api.github.com:44a/user"),
	deny(dURL, "GET", "https://api.github.com:443:443/user"),
	deny(dURL, "GET", "ftp://api.github.com/user"),
	deny(dURL, "GET", "javascript://api.github.com/%0aalert(1)"),
	deny(dURL, "GET", "https://api.github.com\uff0f@evil.test/user"),
	deny(dURL, "GET", "https://evil.test\uff0fapi.github.com/user"),
	allow(rLevel, "GET", "https://api.github.com\u200b/user", canon(gh+"/user")),
	deny(dURL, "GET", "https://api.github.com/\xff"),
	deny(dURL, "GET", ""),

	// GitHub API: header rules.
	deny(dPH, "GET", gh+"/user", hdr("X-Debug", "${secret:GITHUB_TOKEN}")),
	deny(dPH, "GET", gh+"/user", hdr("Authorization", "${basic:x-access-token:GITHUB_TOKEN}")),
	deny(dPH, "GET", "https://evil.test/", hdr("Authorization", "Bearer ${secret:GITHUB_TOKEN}")),
	deny(dPH, "GET", gh+"/user", hdr("Accept", "${secret:SHOP_TOKEN}")),
	deny(dHeader, "GET", gh+"/user", hdr("Accept", "application/json\r\nAuthorization: token x")),
	deny(dHeader, "GET", gh+"/user", hdr("Accept\r\nHost", "evil.test")),
	deny(dHeader, "GET", gh+"/user", hdr("", "x")),

	// GitHub GraphQL: queries only, every operation counts.
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("query { viewer { login } }")), rule("github-graphql-query")),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("{ viewer { login } }"))),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("query Me { viewer { ...F } } fragment F on User { login }"))),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("query { createIssue: viewer { login } }"))),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("query { a } # mutation { b }"))),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(gql("query A { a } query B { b }"))),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(`[`+gql("query { a }")+`,`+gql("{ b }")+`]`)),
	allow(rAllow, "POST", gh+"/graphql", jsonBody(`{"query":"query($n:Int){a(n:$n)}","variables":{"n":1},"operationName":null}`)),
	allow(rAllow, "POST", "https://API.github.com/GraphQL", jsonBody(gql("{ a }"))),
	allow(rAllow, "POST", gh+"/graphql", hdr("Content-Type", "application/json; charset=utf-8"), rawBody(gql("{ a }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("mutation { createIssue(input: {}) { issue { id } } }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("mutation { viewer: createIssue { id } }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("# query { a }\nmutation { b }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("\"\"\"query\"\"\" mutation { b }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("\ufeffmutation { b }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":"\u006dutation { b }"}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":"query A { a } mutation B { b }","operationName":"A"}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":"mutation B { b } query A { a }","operationName":"A"}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("subscription { s }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`[`+gql("query { a }")+`,`+gql("mutation { b }")+`]`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`[`+gql("query { a }")+`,{"id":"persisted-mutation"}]`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`[]`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":"query { a }","query":"mutation { b }"}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody("\ufeff"+gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("query { a }")+"x")),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`mutation { b }`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"id":"7c1d","extensions":{"persistedQuery":{"version":1}}}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":null}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"Query":"query { a }"}`)),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("fragment F on User { login }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("query { a } mutation"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("Mutation { b }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(gql("query { a }\u0000mutation { b }"))),
	deny(dLevel, "POST", gh+"/graphql", jsonBody(`{"query":"query { a }\ud800"}`)),
	deny(dLevel, "POST", gh+"/graphql", hdr("Content-Type", "application/graphql"), rawBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql", hdr("Content-Type", "application/x-www-form-urlencoded"), rawBody("query=mutation+%7B+b+%7D")),
	deny(dLevel, "POST", gh+"/graphql", hdr("Content-Type", "text/plain"), rawBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql", hdr("Content-Type", "application/json; charset=utf-16"), rawBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql", hdr("Content-Type", "application/json"), hdr("Content-Type", "application/graphql"), rawBody(gql("query { a }"))),
	allow(rAllow, "POST", gh+"/graphql", hdr("Content-Type", "application/vnd.github+json; charset=\"UTF-8\""), rawBody(gql("query { a }"))),
	allow(rAllow, "POST", gh+"/graphql/", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql", rawBody("")),
	deny(dLevel, "POST", gh+"/graphql?query=mutation%7Bb%7D", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?%71uery=mutation%7Bb%7D", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?operationName=B", jsonBody(gql("query A { a } query B { b }"))),
	allow(rAllow, "POST", gh+"/graphql?trace=1", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?trace=1;query=mutation%7Bb%7D", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?trace=1;%71uery=mutation%7Bb%7D", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?trace=1;operationName=B", jsonBody(gql("query A { a } query B { b }"))),
	deny(dLevel, "POST", gh+"/graphql?trace=1;variables=%7B%7D", jsonBody(gql("query { a }"))),
	deny(dLevel, "POST", gh+"/graphql?query=query%7Ba%7D;query=mutation%7Bb%7D", jsonBody(gql("query { a }"))),
	allow(rAllow, "POST", gh+"/graphql?trace=1;x=2", jsonBody(gql("query { a }"))),
	allow(rAllow, "POST", gh+"/graphql?trace=a%3Bquery", jsonBody(gql("query { a }"))),
	deny(dRule, "GET", gh+"/graphql?query=query%7Ba%7D;query=mutation%7Bb%7D", rule("github-graphql-get")),
	deny(dRule, "GET", gh+"/graphql?query=mutation%7Bb%7D", rule("github-graphql-get")),
	deny(dRule, "GET", gh+"/graphql/?query=mutation%7Bb%7D"),
	deny(dRule, "GET", gh+"/GraphQL?query=mutation%7Bb%7D"),
	deny(dRule, "GET", gh+"/%67raphql?query=mutation%7Bb%7D"),
	deny(dRule, "GET", gh+"/x/../graphql?query=mutation%7Bb%7D"),
	deny(dRule, "GET", gh+"//graphql?query=mutation%7Bb%7D"),
	deny(dRule, "HEAD", gh+"/graphql"),

	// GitHub git over smart HTTP: clone and fetch only.
	allow(rAllow, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack", rule("github-git-info-refs")),
	allow(rAllow, "GET", git+"/octo/hello/info/refs?service=git-upload-pack"),
	allow(rAllow, "GET", "https://GitHub.com/Octo/Hello.GIT/INFO/refs?service=git-upload-pack"),
	allow(rAllow, "GET", git+"/octo/hello.git/info/refs?%73ervice=git-upload-pack", canon(git+"/octo/hello.git/info/refs?service=git-upload-pack")),
	allow(rAllow, "POST", git+"/octo/hello.git/git-upload-pack", rule("github-git-upload-pack")),
	allow(rAllow, "POST", git+"/Octo/Hello.git/Git-Upload-Pack"),
	allow(rAllow, "POST", git+"/octo/hello.git/git-upload-pack", hdr("Content-Encoding", "gzip"), hdr("Git-Protocol", "version=2"), rawBody("\x1f\x8b")),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-receive-pack", rule("github-git-receive-pack-refs")),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?%73ervice=git-receive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-%72eceive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-receive-pack#?service=git-upload-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack&service=git-receive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-receive-pack&service=git-upload-pack"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack%26service%3Dgit-receive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack;service=git-receive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?x=1;service=git-receive-pack"),
	deny(dRule, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack&x=1;service=git-receive-pack"),
	allow(rAllow, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack&x=1;service=git-upload-pack"),
	allow(rAllow, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack&x=1"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?service=git-upload-pack+"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?service=GIT-UPLOAD-PACK"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?service="),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?service"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs"),
	deny(dLevel, "GET", git+"/octo/hello.git/info/refs?Service=git-upload-pack"),
	deny(dLevel, "HEAD", git+"/octo/hello.git/info/refs?service=git-upload-pack"),
	deny(dLevel, "POST", git+"/octo/hello.git/info/refs?service=git-upload-pack"),
	deny(dLevel, "GET", git+"/octo/hello.git/HEAD"),
	deny(dLevel, "GET", git+"/octo/hello.git/objects/info/packs"),
	deny(dLevel, "GET", git+"/octo/info/refs?service=git-upload-pack"),
	deny(dLevel, "GET", git+"/a/b/c/info/refs?service=git-upload-pack"),
	deny(dLevel, "PUT", git+"/octo/hello.git/git-upload-pack"),
	deny(dLevel, "GET", git+"/octo/hello/settings"),
	deny(dRule, "POST", git+"/octo/hello.git/git-receive-pack", rule("github-git-receive-pack")),
	deny(dRule, "POST", git+"/octo/hello/git-receive-pack"),
	deny(dRule, "POST", git+"/Octo/Hello.git/GIT-RECEIVE-PACK"),
	deny(dRule, "POST", git+"/octo/hello.git/git-%72eceive-pack"),
	deny(dRule, "POST", git+"/octo/hello.git/git-upload-pack/../git-receive-pack"),
	deny(dRule, "POST", git+"/octo/hello.git/git-upload-pack/%2e%2e/git-receive-pack"),
	deny(dRule, "POST", git+"/octo/hello.git/./git-receive-pack"),
	deny(dRule, "POST", git+"//octo//hello.git//git-receive-pack"),
	deny(dRule, "POST", git+"/octo/hello.git/git-receive-pack/"),
	deny(dRule, "POST", git+"/octo/hello.git/git-receive-pack?x=git-upload-pack"),
	deny(dRule, "POST", git+"/octo/hello.git/git-receive-pack#/git-upload-pack"),
	deny(dURL, "POST", git+"/octo/hello.git/git-upload-pack%2F..%2Fgit-receive-pack"),
	deny(dSlash, "POST", git+"/octo%2Fhello.git/git-upload-pack"),
	deny(dURL, "POST", git+"/octo/hello.git/git-upload-pack;/../git-receive-pack"),
	deny(dURL, "POST", git+"/octo/hello.git/..;/git-receive-pack"),
	deny(dURL, "POST", git+"/octo/hello.git/git-upload-pack%3B"),
	deny(dURL, "POST", git+"/octo/hello.git/git-upload-pack%5C..%5Cgit-receive-pack"),
	deny(dURL, "POST", git+"/octo/hello.git/git-upload-pack/%252e%252e/git-receive-pack"),
	deny(dMO, "POST", git+"/octo/hello.git/git-upload-pack", hdr("X-HTTP-Method-Override", "PUT")),
	deny(dNoSvc, "POST", "http://github.com/octo/hello.git/git-upload-pack"),
	deny(dNoSvc, "POST", "https://github.com.evil.test/octo/hello.git/git-upload-pack"),
	deny(dNoSvc, "GET", "https://gist.github.com/octo/hello.git/info/refs?service=git-upload-pack"),
	deny(dNoSvc, "GET", "https://codeload.github.com/octo/hello/tar.gz/main"),

	// Model APIs.
	allow(rLevel, "POST", "https://api.anthropic.com/v1/messages", jsonBody(`{"model":"m"}`), hdr("anthropic-version", "2023-06-01")),
	allow(rLevel, "POST", "https://api\uff0eanthropic\uff0ecom/v1/messages", canon("https://api.anthropic.com/v1/messages")),
	allow(rLevel, "POST", "https://api.openai.com/v1/chat/completions", jsonBody(`{}`)),
	deny(dNoSvc, "POST", "https://api.anthropic.com.evil.test/v1/messages"),
	deny(dNoSvc, "POST", "https://api.anthro\u0440ic.com/v1/messages"), // Cyrillic r
	deny(dNoSvc, "POST", "https://api.openai.com.evil.test/v1/chat/completions"),
	deny(dNoSvc, "POST", "https://api-openai.com/v1/chat/completions"),
	deny(dURL, "POST", "https://api.anthropic.com@evil.test/v1/messages"),
	deny(dURL, "POST", "https://api.anthropic.com\uff0f@evil.test/v1/messages"),
	deny(dURL, "POST", "https://api.anthropic.com%E3%80%82evil.test/v1/messages"),
	deny(dPH, "POST", "https://evil.test/v1/messages", hdr("x-api-key", "${secret:ANTHROPIC_API_KEY}")),
	deny(dPH, "POST", "https://api.anthropic.com/v1/messages", hdr("x-api-key", "${secret:OPENAI_API_KEY}")),

	// A hand-written service: deny rules on paths, JSON body rules.
	allow(rLevel, "GET", shop+"/v1/items"),
	allow(rLevel, "GET", shop+"/v1/items/7?expand=true&expand=false"),
	allow(rLevel, "GET", shop+"/v1/adminx"),
	allow(rLevel, "GET", shop+"/v1/items/caf%C3%A9", canon(shop+"/v1/items/caf%C3%A9")),
	allow(rLevel, "GET", shop+"/v1/items/café", canon(shop+"/v1/items/caf%C3%A9")),
	allow(rLevel, "GET", shop+"/v1/items/a%7cb", canon(shop+"/v1/items/a%7Cb")),
	allow(rLevel, "GET", shop+"/v1/items/a{b}", canon(shop+"/v1/items/a%7Bb%7D")),
	allow(rLevel, "GET", shop+"/v1/items?q='x'", canon(shop+"/v1/items?q=%27x%27")),
	allow(rLevel, "GET", shop+"/v1/items?q=%7e%2a", canon(shop+"/v1/items?q=~%2A")),
	allow(rLevel, "GET", shop+"/v1/items?", canon(shop+"/v1/items")),
	allow(rAllow, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book"}`), rule("shop-order")),
	allow(rAllow, "POST", shop+"/v1/orders", jsonBody(`{"kind":"pen","qty":2}`)),
	allow(rAllow, "POST", shop+"/v1/orders", jsonBody(`{"kind":"b\u006fok"}`)),
	allow(rAllow, "POST", shop+"/v1//orders", jsonBody(`{"kind":"book"}`), canon(shop+"/v1/orders")),
	allow(rAllow, "POST", shop+"/v1/Orders", jsonBody(`{"kind":"book"}`)),
	allow(rAllow, "POST", shop+"/v1/orders/7/cancel", hdr("X-HTTP-Method-Override", "DELETE"), rule("shop-cancel")),
	allow(rAllow, "GET", shop+"/v1/search", jsonBody(`{"q":"pens"}`), rule("shop-search-body")),
	allow(rLevel, "GET", shop+"/v1/search"),
	deny(dLevel, "GET", shop+"/v1/search", jsonBody(`{"query":"pens"}`)),
	deny(dLevel, "GET", shop+"/v1/search", hdr("Content-Type", "text/plain"), rawBody(`{"q":"pens"}`)),
	deny(dLevel, "GET", shop+"/v1/items", jsonBody(`{"q":"pens"}`)),
	deny(dRule, "GET", shop+"/admin/users", rule("shop-admin")),
	deny(dRule, "GET", shop+"/admin"),
	deny(dRule, "GET", shop+"/admin/"),
	deny(dRule, "GET", shop+"/ADMIN/users"),
	deny(dRule, "GET", shop+"/Admin/Users"),
	deny(dRule, "GET", shop+"/%61dmin/users"),
	deny(dRule, "GET", shop+"/adm%69n/users"),
	deny(dRule, "GET", shop+"/adm%49N/users"),
	deny(dRule, "GET", shop+"/v1/../admin/users"),
	deny(dRule, "GET", shop+"/v1/%2e%2e/admin/users"),
	deny(dRule, "GET", shop+"/v1/%2E%2E/admin/users"),
	deny(dRule, "GET", shop+"/v1/.%2e/admin/users"),
	deny(dRule, "GET", shop+"/v1/%2e./admin/users"),
	deny(dRule, "GET", shop+"/v1/items/../../admin/users"),
	deny(dRule, "GET", shop+"/../admin/users"),
	deny(dRule, "GET", shop+"/../../../../admin/users"),
	deny(dRule, "GET", shop+"/./admin/users"),
	deny(dRule, "GET", shop+"/%2e/admin/users"),
	deny(dRule, "GET", shop+"/admin/./users"),
	deny(dRule, "GET", shop+"//admin/users"),
	deny(dRule, "GET", shop+"///admin///users"),
	allow(rLevel, "GET", shop+"/v1/x//../../admin/users", canon(shop+"/v1/admin/users")),
	deny(dRule, "GET", shop+"/v1/items/.."+"/../admin"),
	allow(rLevel, "GET", shop+"/v1/..", canon(shop+"/")),
	deny(dRule, "GET", shop+"/admin#/v1/items"),
	deny(dRule, "GET", shop+"/admin?/v1/items"),
	deny(dRule, "GET", "HTTPS://API.SHOP.TEST/ADMIN/USERS"),
	deny(dRule, "GET", "https://api.shop.test./admin/users"),
	deny(dRule, "GET", "https://api.shop.test:443/admin/users"),
	deny(dSlash, "GET", shop+"/admin%2Fusers"),
	deny(dURL, "GET", shop+"/v1/..%2Fadmin/users"),
	deny(dSlash, "GET", shop+"/v1/items/a%2fb"),
	deny(dURL, "GET", shop+"/v1/%2e%2e%2fadmin"),
	deny(dURL, "GET", shop+"/v1/..%5Cadmin/users"),
	deny(dURL, "GET", shop+"/v1\\..\\admin/users"),
	deny(dURL, "GET", shop+"/v1/%252e%252e/admin/users"),
	deny(dURL, "GET", shop+"/v1/%25252e%25252e/admin"),
	deny(dURL, "GET", shop+"/v1/%252fadmin"),
	deny(dURL, "GET", shop+"/v1/%25%32%65%25%32%65/admin"),
	deny(dURL, "GET", shop+"/admin;/users"),
	deny(dURL, "GET", shop+"/v1/..;/admin/users"),
	deny(dURL, "GET", shop+"/admin%3b/users"),
	deny(dURL, "GET", shop+"/v1/items%00/../../admin"),
	deny(dURL, "GET", shop+"/v1/items/%0a"),
	deny(dURL, "GET", shop+"/v1/items/%7F"),
	deny(dURL, "GET", shop+"/v1/items/%"),
	deny(dURL, "GET", shop+"/v1/items/%2"),
	deny(dURL, "GET", shop+"/v1/items/%zz"),
	deny(dURL, "GET", shop+"/v1/items?q=%00"),
	deny(dURL, "GET", shop+"/v1/items?q=%G0"),
	deny(dRule, "DELETE", shop+"/v1/orders/7", rule("shop-order-delete")),
	deny(dRule, "delete", shop+"/v1/orders/7"),
	deny(dRule, "DeLeTe", shop+"/v1/orders/7"),
	deny(dRule, "DELETE", shop+"/v1/orders/7/"),
	deny(dRule, "DELETE", shop+"/v1/ORDERS/7"),
	deny(dRule, "DELETE", shop+"/v1/orders/7/cancel/.."),
	deny(dMO, "POST", shop+"/v1/orders/7", hdr("X-HTTP-Method-Override", "DELETE")),
	deny(dMO, "GET", shop+"/v1/orders/7", hdr("X-Method-Override", "DELETE")),
	deny(dMO, "POST", shop+"/v1/orders/7/cancel", hdr("X-HTTP-Method", "DELETE")),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"car"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"Book"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book","kind":"car"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"car","kind":"book"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book","gift":true}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book","gift":null}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":["book"]}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`[{"kind":"book"}]`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book"} {"kind":"car"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody("\ufeff"+`{"kind":"book"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book\ud800"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{"kind":"book",}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody(`{'kind':'book'}`)),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody("{\"kind\":\"book\"}\x00")),
	deny(dLevel, "POST", shop+"/v1/orders", jsonBody("{\"kind\":\"bo\xffok\"}")),
	deny(dLevel, "POST", shop+"/v1/orders", hdr("Content-Type", "text/plain"), rawBody(`{"kind":"book"}`)),
	deny(dLevel, "POST", shop+"/v1/orders", hdr("Content-Type", "application/x-www-form-urlencoded"), rawBody(`kind=book`)),
	deny(dLevel, "POST", shop+"/v1/orders", hdr("Content-Type", "application/json"), hdr("Content-Encoding", "gzip"), rawBody("\x1f\x8b\x08")),
	allow(rAllow, "POST", shop+"/v1/orders/", jsonBody(`{"kind":"book"}`)),
	allow(rAllow, "POST", shop+"/v1/orders/x/..", jsonBody(`{"kind":"book"}`), canon(shop+"/v1/orders/")),
	deny(dLevel, "PUT", shop+"/v1/orders", jsonBody(`{"kind":"book"}`)),

	// Opaque encoded slashes (GitLab project paths).
	allow(rAllow, "GET", gitlab+"/api/v4/projects/group%2Fproject", rule("gitlab-project")),
	allow(rAllow, "GET", gitlab+"/api/v4/projects/group%2fproject", canon(gitlab+"/api/v4/projects/group%2Fproject")),
	allow(rAllow, "GET", gitlab+"/api/v4/projects/group%2Fproject/repository/files/src%2Fmain.go", rule("gitlab-file")),
	deny(dLevel, "GET", gitlab+"/api/v4/projects/group/project"),
	deny(dLevel, "GET", gitlab+"/api/v4/projects"),
	deny(dLevel, "DELETE", gitlab+"/api/v4/projects/group%2Fproject"),
	deny(dURL, "GET", gitlab+"/api/v4/projects/group%2F..%2F..%2Fadmin"),
	deny(dURL, "GET", gitlab+"/api/v4/projects/..%2Fadmin"),
	deny(dURL, "GET", gitlab+"/api/v4/projects/group%2F."),
	deny(dURL, "GET", gitlab+"/api/v4/projects/group%5Cproject"),
	deny(dURL, "GET", gitlab+"/api/v4/projects/group%252Fproject"),

	// IP targets: every spelling of the named address is that address; no
	// other address passes.
	allow(rLevel, "GET", fake+"/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://0x7f.0.0.1:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://0x7F000001:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://2130706433:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://0177.0.0.1:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://017700000001:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://127.1:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://127.0.1:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://127.0.0.1.:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://\uff11\uff12\uff17.0.0.1:8080/x", canon(fake+"/x")),
	allow(rLevel, "GET", "http://[::1]:9090/x", canon("http://[::1]:9090/x")),
	allow(rLevel, "GET", "http://[0:0:0:0:0:0:0:1]:9090/x", canon("http://[::1]:9090/x")),
	allow(rLevel, "GET", "http://[::0001]:9090/x", canon("http://[::1]:9090/x")),
	deny(dIP, "GET", "http://127.0.0.1:8081/x"),
	deny(dIP, "GET", "http://127.0.0.1/x"),
	deny(dIP, "GET", "https://127.0.0.1:8080/x"),
	deny(dIP, "GET", "http://127.0.0.2:8080/x"),
	deny(dIP, "GET", "http://0x7f.0.0.2:8080/x"),
	deny(dIP, "GET", "http://2130706434:8080/x"),
	deny(dIP, "GET", "http://0:8080/x"),
	deny(dIP, "GET", "http://0x:8080/x"),
	deny(dIP, "GET", "http://[::ffff:127.0.0.1]:8080/x"),
	deny(dIP, "GET", "http://[::ffff:7f00:1]:8080/x"),
	deny(dIP, "GET", "http://[::127.0.0.1]:8080/x"),
	deny(dIP, "GET", "http://[::1]:8080/x"),
	deny(dIP, "GET", "http://[::2]:9090/x"),
	deny(dIP, "GET", "http://169.254.169.254/latest/meta-data/"),
	deny(dIP, "GET", "http://0xa9fea9fe/latest/meta-data/"),
	deny(dIP, "GET", "http://0251.0376.0251.0376/latest/meta-data/"),
	deny(dIP, "GET", "http://2852039166/latest/meta-data/"),
	deny(dIP, "GET", "http://[fd00:ec2::254]/latest/meta-data/"),
	deny(dIP, "GET", "https://8.8.8.8/"),
	deny(dNoSvc, "GET", "http://localhost:8080/x"),
	deny(dNoSvc, "GET", "http://127.0.0.1.nip.io:8080/x"),
	deny(dNoSvc, "GET", "http://0x7f.0.0.1.evil.test:8080/x"),
	deny(dURL, "GET", "http://1.2.3.256/"),
	deny(dURL, "GET", "http://1.2.3.4.5/"),
	deny(dURL, "GET", "http://0x100000000/"),
	deny(dURL, "GET", "http://4294967296/"),
	deny(dURL, "GET", "http://09.0.0.1/"),
	deny(dIP, "GET", "http://1.2.3.0x/"),
	deny(dURL, "GET", "http://foo.0x1/"),
	deny(dURL, "GET", "http://evil.test.127.0.0.1:8080/x"),
	deny(dURL, "GET", "http://127.0.0.1:8080@evil.test/x"),
	deny(dURL, "GET", "http://[fe80::1%25eth0]:8080/x"),
	deny(dURL, "GET", "http://[::1/x"),
	deny(dURL, "GET", "http://[1::2::3]/x"),
	deny(dURL, "GET", "http://[::1]x/"),
	deny(dURL, "GET", "http://[1.2.3.4]/x"),
	deny(dURL, "GET", "http://::1/x"),
	deny(dURL, "GET", "http://[00001::]/x"),

	// A service spanning hosts.
	allow(rAllow, "GET", "https://bucket.storage.example.test/key", rule("storage-read")),
	allow(rAllow, "GET", "https://BUCKET.Storage.Example.Test./key", canon("https://bucket.storage.example.test/key")),
	deny(dLevel, "GET", "https://storage.example.test/key"),
	deny(dLevel, "PUT", "https://bucket.storage.example.test/key"),
	deny(dNoSvc, "GET", "https://bucket.storage.example.test.evil.test/key"),
	deny(dNoSvc, "GET", "https://a.b.storage.example.test/key"),
	deny(dNoSvc, "GET", "https://evilstorage.example.test/key"),
	deny(dNoSvc, "GET", "http://bucket.storage.example.test/key"),
	deny(dNoSvc, "GET", "https://bucket.storage.example.test:8443/key"),

	// Query constraints under both readings of a query: split on '&' only,
	// and on '&' and ';' (older Java, Rails and Python parsers). An allow
	// rule must hold under both; a deny rule matches under either.
	allow(rAllow, "GET", "https://search.example.test/search?q=foo", rule("search-q")),
	allow(rAllow, "GET", "https://search.example.test/search?q=foo&x=1"),
	allow(rAllow, "GET", "https://search.example.test/search?q=foo&note=a;b"),
	allow(rAllow, "GET", "https://search.example.test/search?x=1;y=2&q=f%6Fo", canon("https://search.example.test/search?x=1;y=2&q=foo")),
	deny(dLevel, "GET", "https://search.example.test/search?q=foo;x=1"),
	deny(dLevel, "GET", "https://search.example.test/search?q=foo;q=bar"),
	deny(dLevel, "GET", "https://search.example.test/search?q=bar;q=foo"),
	deny(dLevel, "GET", "https://search.example.test/search?q=foo&x=1;q=evil"),
	deny(dLevel, "GET", "https://search.example.test/search?x=1;q=evil&q=foo"),
	deny(dLevel, "GET", "https://search.example.test/search?q=foo&x=1;%71=evil"),
	deny(dLevel, "GET", "https://search.example.test/search?q=foo%3Bq%3Dbar"),
	deny(dLevel, "GET", "https://search.example.test/search?x=1;q=foo"),
	allow(rAllow, "GET", "https://search.example.test/items?id=7", rule("search-items")),
	allow(rAllow, "GET", "https://search.example.test/items?page=2;x=1&id=7"),
	deny(dLevel, "GET", "https://search.example.test/items?id=7;page=2"),
	deny(dLevel, "GET", "https://search.example.test/items?id=7;id=x"),
	deny(dLevel, "GET", "https://search.example.test/items?id=7&x=;id=..%2F"),
	deny(dLevel, "GET", "https://search.example.test/items?id=7%3B"),
	allow(rAllow, "GET", "https://search.example.test/list?page=2", rule("search-list")),
	allow(rAllow, "GET", "https://search.example.test/list?page=2;x=1"),
	allow(rAllow, "GET", "https://search.example.test/list?note=admin;x"),
	deny(dLevel, "GET", "https://search.example.test/list?page=2;admin=1"),
	deny(dLevel, "GET", "https://search.example.test/list?page=2&admin=1"),
	deny(dLevel, "GET", "https://search.example.test/list?page=2;admin"),
	allow(rLevel, "GET", "https://reports.example.test/export?format=json"),
	allow(rLevel, "GET", "https://reports.example.test/export?format=json;x=1"),
	allow(rLevel, "GET", "https://reports.example.test/export?note=format%3Dcsv"),
	deny(dRule, "GET", "https://reports.example.test/export?format=csv", rule("reports-no-csv")),
	deny(dRule, "GET", "https://reports.example.test/export?format=json&format=csv"),
	deny(dRule, "GET", "https://reports.example.test/export?format=csv&format=json"),
	deny(dRule, "GET", "https://reports.example.test/export?format=json;format=csv"),
	deny(dRule, "GET", "https://reports.example.test/export?x=1;format=csv"),
	deny(dRule, "GET", "https://reports.example.test/export?%66ormat=csv"),
	allow(rLevel, "GET", "https://reports.example.test/any?x=1;nodebug=1"),
	deny(dRule, "GET", "https://reports.example.test/any?debug", rule("reports-no-debug")),
	deny(dRule, "GET", "https://reports.example.test/any?x=1;debug=1"),
	deny(dRule, "GET", "https://reports.example.test/any?x=1;debug"),
	allow(rLevel, "GET", "https://reports.example.test/safe?token=t"),
	allow(rLevel, "GET", "https://reports.example.test/safe?page=1&token=t"),
	allow(rLevel, "GET", "https://reports.example.test/safe?page=1&token=t;x=1"),
	deny(dRule, "GET", "https://reports.example.test/safe?page=1", rule("reports-need-token")),
	deny(dRule, "GET", "https://reports.example.test/safe?page=1;token=t"),
	deny(dRule, "GET", "https://reports.example.test/safe?x=token"),

	// Redirects: each hop is decided again.
	allow(rLevel, "GET", "/repos/octo/hello2", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/repos/octo/hello2")),
	allow(rLevel, "GET", "hello2", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/repos/octo/hello2")),
	allow(rLevel, "GET", "?page=2", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/repos/octo/hello?page=2")),
	allow(rLevel, "GET", "../../user", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/user")),
	allow(rLevel, "GET", "#top", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/repos/octo/hello")),
	allow(rLevel, "GET", "//api.github.com/user", redirectFrom(gh+"/repos/octo/hello"), canon(gh+"/user")),
	deny(dNoSvc, "GET", "https://evil.test/collect", redirectFrom(gh+"/repos/octo/hello")),
	deny(dNoSvc, "GET", "//evil.test/collect", redirectFrom(gh+"/repos/octo/hello")),
	deny(dNoSvc, "GET", "http://api.github.com/user", redirectFrom(gh+"/repos/octo/hello")),
	deny(dNoSvc, "GET", "https://api.github.com.evil.test/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dNoSvc, "GET", "https://objects.githubusercontent.com/x", redirectFrom(gh+"/repos/octo/hello")),
	deny(dIP, "GET", "http://169.254.169.254/latest/meta-data/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dRule, "POST", "/octo/hello.git/git-receive-pack", redirectFrom(git+"/octo/hello.git/git-upload-pack")),
	deny(dRule, "POST", "git-receive-pack", redirectFrom(git+"/octo/hello.git/git-upload-pack")),
	deny(dURL, "GET", "/\\evil.test/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "\\\\evil.test/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "https:evil.test", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "https:/evil.test", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "javascript:alert(1)", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", " https://evil.test/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "https://api.github.com@evil.test/", redirectFrom(gh+"/repos/octo/hello")),
	deny(dURL, "GET", "", redirectFrom(gh+"/repos/octo/hello")),
}

func (r *row) name(i int) string {
	verdict := "deny"
	if r.allow {
		verdict = "allow"
	}
	n := fmt.Sprintf("%03d_%s_%s_%q", i, verdict, r.method, r.url)
	if r.base != "" {
		n += "_from_" + r.base
	}
	return strings.ReplaceAll(n, "/", "|")
}

// request builds the row's request, resolving a redirect first. A Location
// that does not resolve is a request with no canonical URL.
func (r *row) request(t *testing.T) policy.Request {
	req := policy.Request{Method: r.method, URL: r.url, Headers: r.headers, Body: []byte(r.body)}
	if r.base != "" {
		u, err := policy.ResolveReference(r.base, r.url)
		if err != nil {
			t.Logf("resolve: %v", err)
			u = ""
		}
		req.URL = u
	}
	return req
}

func TestBypassTable(t *testing.T) {
	e := fixture(t)
	denied, allowed := 0, 0
	for i := range table {
		r := &table[i]
		if r.allow {
			allowed++
		} else {
			denied++
		}
		t.Run(r.name(i), func(t *testing.T) {
			req := r.request(t)
			d := e.Evaluate(&req, nil)
			require.Equal(t, r.allow, d.Allow, "decision %+v", d)
			require.False(t, d.Report)
			require.Equal(t, r.reason, d.Reason, "decision %+v", d)
			if r.rule != "" {
				require.Equal(t, r.rule, d.Rule)
			}
			if r.canon != "" {
				require.Equal(t, r.canon, d.URL)
			}
			if d.URL == "" {
				return
			}
			require.True(t, policy.IsCanonical(d.URL), "canonical URL %q", d.URL)
			// Every spelling is decided exactly as its canonical form.
			creq := req
			creq.URL, creq.Method = d.URL, d.Method
			cd := e.Evaluate(&creq, nil)
			require.Equal(t, d, cd)
		})
	}
	require.GreaterOrEqual(t, denied, 150, "bypass attempts")
	require.GreaterOrEqual(t, allowed, 50, "legitimate requests")
}

// TestBypassTargetOverride: a target override (DAMPER_TARGETS, --target)
// moves exactly the declared origin. The service's host globs stay on the
// declared scheme and port, so a credential goes over plain http only to
// the origin the operator named.
func TestBypassTargetOverride(t *testing.T) {
	p, err := policy.New(policy.NewService("bucket", "https://s3.example.test").
		Hosts("*.s3.example.test").
		Level(policy.AllowRead).
		Credential("Authorization", "Bearer ${secret:BUCKET_TOKEN}"))
	require.NoError(t, err)
	plain, tls := p, p
	require.NoError(t, plain.SetTarget("bucket", "http://127.0.0.1:9000"))
	require.NoError(t, tls.SetTarget("bucket", "https://127.0.0.1:8443"))

	cases := []struct {
		policy policy.Policy
		url    string
		allow  bool
		reason policy.Reason
		sent   string // the URL sent, with the credential
	}{
		// The declared origin moves, spelled any way.
		{plain, "https://s3.example.test/k", true, rLevel, "http://127.0.0.1:9000/k"},
		{plain, "HTTPS://S3.Example.Test.:443/k", true, rLevel, "http://127.0.0.1:9000/k"},
		{plain, "http://127.0.0.1:9000/k", true, rLevel, "http://127.0.0.1:9000/k"},
		{tls, "https://s3.example.test/k", true, rLevel, "https://127.0.0.1:8443/k"},
		// Host globs keep the declared scheme and port, and carry the
		// credential there (over https, to hosts the policy names).
		{plain, "https://eu.s3.example.test/k", true, rLevel, "https://eu.s3.example.test/k"},
		{tls, "https://eu.s3.example.test/k", true, rLevel, "https://eu.s3.example.test/k"},
		// ... and never the override's.
		{plain, "http://eu.s3.example.test:9000/k", false, dNoSvc, ""},
		{plain, "http://eu.s3.example.test/k", false, dNoSvc, ""},
		{plain, "https://eu.s3.example.test:9000/k", false, dNoSvc, ""},
		{tls, "https://eu.s3.example.test:8443/k", false, dNoSvc, ""},
		{tls, "http://eu.s3.example.test:8443/k", false, dNoSvc, ""},
		// The override names one address, on one scheme and port.
		{plain, "http://s3.example.test/k", false, dNoSvc, ""},
		{plain, "http://s3.example.test:9000/k", false, dNoSvc, ""},
		{plain, "https://127.0.0.1:9000/k", false, dIP, ""},
		{plain, "http://127.0.0.2:9000/k", false, dIP, ""},
		{plain, "http://localhost:9000/k", false, dNoSvc, ""},
		{tls, "http://127.0.0.1:8443/k", false, dIP, ""},
	}
	for _, c := range cases {
		t.Run(c.policy.Services[0].Target+"_"+strings.ReplaceAll(c.url, "/", "|"), func(t *testing.T) {
			e, err := policy.Compile(c.policy)
			require.NoError(t, err)
			d := e.Evaluate(&policy.Request{Method: "GET", URL: c.url}, nil)
			require.Equal(t, c.allow, d.Allow, "decision %+v", d)
			require.Equal(t, c.reason, d.Reason, "decision %+v", d)
			if !c.allow {
				require.Empty(t, d.Headers)
				return
			}
			require.Equal(t, c.sent, d.URL)
			require.Contains(t, d.Headers, policy.Header{Name: "Authorization", Value: "Bearer ${secret:BUCKET_TOKEN}"})
			origin := policy.Origin(d.URL)
			require.True(t, e.Owns(origin, "BUCKET_TOKEN"), "the host fills the credential in at %s", origin)
		})
	}

	e, err := policy.Compile(plain)
	require.NoError(t, err)
	for _, origin := range []string{"http://eu.s3.example.test:9000", "http://eu.s3.example.test", "https://s3.example.test", "http://s3.example.test:9000"} {
		require.False(t, e.Owns(origin, "BUCKET_TOKEN"), origin)
	}
}
