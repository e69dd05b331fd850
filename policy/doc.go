// Package policy decides every outbound HTTP request an agent makes. It is
// pure Go with no I/O: the guest module runs it before a request becomes a
// fetch effect, and hosts use its helpers to substitute and scrub secrets.
//
// # Policies
//
// A Policy is versioned data whose JSON form round-trips exactly. Agent
// authors build one with New, NewService and On, or start from the presets
// Anthropic, OpenAI, GitHub and GitHubGit. Compile turns it into an Engine,
// once; Engine.Evaluate then decides requests without allocating unless a
// body matcher has to read the body.
//
// A request belongs to the service whose target origin it addresses (or
// whose Hosts globs match its host, on the scheme and port of the target
// the policy declares). Within the service, deny rules are checked first
// and any match denies; then allow rules in order, where the first match
// allows unless its limit is used up; then the level: allow-read (GET,
// HEAD and OPTIONS without a body), allow-all or deny-all. A request to an
// origin no service owns is denied. A read that carries a body is allowed
// only by an allow rule: servers that read a GET body would act on input
// the level never looked at.
//
// Rules match on methods, a host glob, a path glob ("*" one segment, "**"
// any number, "*" inside a segment any run of characters; a trailing slash
// is not significant, since most servers route "/a/" as "/a"; without case
// when the service says so), query constraints, JSON pointer matchers and a
// GraphQL matcher. Body matchers fail closed: a body that cannot be read the way
// every server would read it (not JSON, a Content-Type other than JSON,
// duplicate keys, a byte order mark, a GraphQL syntax error, a persisted
// query without a document, GraphQL parameters in the URL as well) makes a
// deny rule match and an allow rule not match. An empty body matches neither. In a GraphQL allow rule every
// operation of every document in the request must fit, whatever
// operationName claims, and a batched array counts every element; in a deny
// rule one fitting operation is enough.
//
// # Queries
//
// Query constraints compare keys and values after decoding (percent escapes,
// and '+' as a space). Servers disagree on how to read a query, so a
// constraint is checked under each reading and fails closed: servers read
// the first, the last or every value of a repeated key, and some (older
// Java servlet containers, Rails, Python's cgi) split parameters on ';' as
// well as '&'. The engine therefore reads the canonical query twice, split
// on '&' alone and split on '&' and ';' (an encoded %3B separates nothing
// under either). In an allow rule a constraint must hold under both: the key
// is present (or, when optional, every value that appears fits), and every
// one of its values fits, so "q=foo;q=bar" and "q=foo&x=1;q=evil" do not
// pass a rule for q=foo, and neither does "q=foo;x=1" (whose '&' reading of
// q is "foo;x=1"; write '&' between parameters). In a deny rule a
// constraint holds when one value fits under either reading, so a
// repeated key or a ';' cannot hide the value it denies; an Absent
// constraint holds when the key is missing under either reading. The
// GraphQL URL parameters (query, operationName, variables, extensions)
// are looked for under both readings: a body is trusted only when no
// reading finds one.
//
// A method-override header (X-HTTP-Method-Override, X-HTTP-Method,
// X-Method-Override) denies the request unless the deciding allow rule names
// it in its Headers. Request headers outside the service's allowlist (and
// the rule's Headers) are stripped. No allowlist, rule or credential may name
// a header the host owns (HostOwnedHeader: Host, framing and hop-by-hop
// fields, Forwarded, Via, X-Forwarded-*, Proxy-*, and Accept-Encoding, which
// would make the response arrive in an encoding the host cannot scrub):
// Compile refuses the policy. Report mode decides as usual, reports
// the would-be denial in Decision.Report, and allows; it never sends a
// request whose URL, method or headers are malformed, that carries a
// placeholder, or that addresses an IP the policy does not name.
//
// # Canonical URLs
//
// The engine canonicalizes a URL once, decides on the canonical URL, and the
// host sends exactly that URL (Decision.URL). The canonical URL is a fixed
// point of WHATWG URL parsing, which is what workerd's fetch applies, so
// what is decided is what is sent. Canonicalization:
//
//   - lower-cases the scheme (http or https, followed by "//") and host,
//     maps an internationalized host to punycode (UTS #46, as WHATWG does,
//     so a full-width dot is a dot), drops one trailing dot and the
//     default port;
//   - reads a host whose last label is a number as WHATWG does (decimal,
//     octal, hex, one to four parts) and writes it dotted; writes IPv6 as
//     WHATWG does (IPv4-mapped in hex). An IP host is allowed only when a
//     service's target names that address;
//   - decodes percent-encoded unreserved characters, upper-cases the other
//     escapes, percent-encodes characters WHATWG would encode, removes dot
//     segments as WHATWG does (encoded dots included), then merges runs of
//     slashes;
//   - drops the fragment, which is never sent, and an empty query.
//
// It refuses userinfo, a backslash, control characters and spaces, invalid
// UTF-8, a percent sign in the host, a malformed escape, %00, an encoded
// control character, %5C or double encoding (%25 followed by two hex digits)
// in the path, a semicolon in the path (servlet containers cut ";params" out
// of segments), a dot segment behind an encoded slash, malformed IPv4 and
// IPv6, and a port outside 1-65535. An encoded slash (%2F) is kept encoded and denied unless the
// service keeps encoded slashes opaque.
//
// # Credentials
//
// The module never holds a secret. A service's Credentials are header
// values with placeholders, which the decision carries and the host fills in
// at send time, only for an origin of a service that owns the
// secret. The grammar, which the Workers host implements too:
//
//	${secret:NAME}       the secret's value
//	${basic:USER:NAME}   "Basic " + base64(USER + ":" + value), standard
//	                     base64 with padding
//	NAME = [A-Z][A-Z0-9_]{0,63}    USER = [A-Za-z0-9._-]{1,64}
//
// Placeholders appear only in header values. Any other "${" in a credential
// value is an error, and a request header from the agent that contains "${"
// is denied, so only the policy decides where a secret goes. The host scrubs
// secret values, raw and encoded, from everything it hands back, including
// from inside a longer base64 text such as an echoed Authorization header
// (Scrubber).
//
// # Target overrides
//
// Configuration may point a service elsewhere (Policy.SetTarget; tests point
// presets at loopback fakes). An override moves exactly the declared
// origin: requests to it are decided and sent at the new target, and the
// service's Hosts globs keep matching on the declared target's scheme and
// port, never the override's. A service whose target is http cannot both
// span hosts and own secrets (Compile refuses it), so a credential goes
// over plain http only to an exact target that the policy or the operator
// named.
//
// # Limits
//
// The engine keeps no state. A rule's Limit is counted per agent instance by
// the caller, keyed by rule id: Evaluate reads the counts through Counters
// and names in Decision.Counter the count to increment once the request is
// sent.
//
// # Redirects
//
// The host does not follow redirects. ResolveReference resolves a Location
// against the current canonical URL, and the next hop is decided with
// Evaluate like any request.
package policy
