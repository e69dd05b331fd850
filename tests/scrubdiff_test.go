package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	hostcore "github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/scrub"
	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// The Workers host substitutes and scrubs secrets in JavaScript
// (worker/secrets.js, worker/scrub.js); the local host uses package policy
// to substitute and internal/scrub to scrub.
// TestSecretsMatchGo runs the same table through both, the JavaScript in one
// node process, and requires the same bytes out and the same decisions.

// diffCase is one row. Kind says which fields are used:
//   - "scrub": Secrets, Input → scrub.New(...).Bytes, whole and
//     streamed in chunks (1 byte, 7 bytes, and with EverySplit two chunks
//     split at every offset);
//   - "agent": Policy, Env, Input → the scrubber for the policy's secrets
//     (Basic users from its credentials), whole and streamed;
//   - "headers": Secrets, Headers → Scrubber.Headers;
//   - "substitute": Policy, Targets, Env, URL, Headers → hostcore.Substitute
//     for the URL's origin, with the policy's Engine as owner;
//   - "target": Target → Policy.SetTarget's canonical origin or refusal.
type diffCase struct {
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Secrets    []scrub.Secret    `json:"-"`
	JSSecrets  []jsSecret        `json:"secrets,omitempty"`
	Input      []byte            `json:"input,omitempty"` // base64 in JSON: bodies may be binary
	EverySplit bool              `json:"everySplit,omitempty"`
	Policy     json.RawMessage   `json:"policy,omitempty"`
	Targets    map[string]string `json:"targets,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	URL        string            `json:"url,omitempty"`
	Headers    [][2]string       `json:"headers,omitempty"`
	Target     string            `json:"target,omitempty"`
}

type jsSecret struct {
	Name       string   `json:"name"`
	Value      string   `json:"value"`
	BasicUsers []string `json:"basicUsers,omitempty"`
}

// jsAnswer is what the node side returns for one row.
type jsAnswer struct {
	Crash    string            `json:"crash"`
	Whole    []byte            `json:"whole"`
	HoldBack int               `json:"holdBack"`
	MaxHeld  int               `json:"maxHeld"`
	Streams  map[string][]byte `json:"streams"`
	// Points are, for the 1- and 7-byte chunkings, how many bytes each
	// push that handed out any gave, then the flush's (when not empty).
	Points  map[string][]int `json:"points"`
	Headers [][2]string      `json:"headers"`
	Origin  string           `json:"origin"`
	Error   *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
	TargetError string `json:"targetError"`
}

// Fake secret values: every character class an encoder treats differently.
const (
	fakeToken  = "fake+tok/en=="            // base64 and percent-encoding specials
	fakeSpaced = `p@ss w0rd "quoted" \ & <` // JSON and form encoding specials
	fakeUni    = "ключ-ünï-€-😀"             // multi-byte UTF-8
	fakePct    = "100%fake%2Fnot"           // percent signs, as if already encoded
	fakeCtl    = "line\nbreak\ttab"         // control characters
	fakeShort  = "ab"                       // shorter than its redaction
	fakeB64    = "tok???>>>~~~key"          // base64 holds '+' and '/' at every offset
	fakeNine   = "short-val"                // scrub.MinEncodedLen: found inside longer base64
	fakeSeven  = "short-v"                  // below it: found hex or base64 only as a whole run
)

// diffPolicy owns three secrets across services with host globs, a Basic
// credential and a service on loopback.
const diffPolicy = `{"version":1,"services":[
 {"name":"api","target":"https://api.example.test","hosts":["*.API.example.test","**.files.example.test"],
  "secrets":["API_TOKEN","API_PASS"],"level":"allow-all",
  "credentials":[{"header":"Authorization","value":"Bearer ${secret:API_TOKEN}"},
                 {"header":"X-Basic","value":"${basic:svc-user:API_PASS}"}]},
 {"name":"store","target":"https://store.example.test:8443","hosts":["s3-*.example.test","127.0.0.*"],
  "secrets":["STORE_KEY"],"level":"allow-read",
  "credentials":[{"header":"Authorization","value":"${basic:keyid:STORE_KEY}"}]},
 {"name":"other","target":"http://127.0.0.1:8081","level":"allow-read"}]}`

var diffEnv = map[string]string{"API_TOKEN": fakeToken, "API_PASS": fakeSpaced, "STORE_KEY": fakeUni}

func diffCases() []diffCase {
	one := func(name, value string) []scrub.Secret { return []scrub.Secret{{Name: name, Value: value}} }
	scrubRow := func(name string, secrets []scrub.Secret, input string, everySplit bool) diffCase {
		return diffCase{Name: name, Kind: "scrub", Secrets: secrets, Input: []byte(input), EverySplit: everySplit}
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sub := func(name, url string, headers ...[2]string) diffCase {
		return diffCase{Name: name, Kind: "substitute", Policy: json.RawMessage(diffPolicy), Env: diffEnv, URL: url, Headers: headers}
	}
	auth := [2]string{"Authorization", "Bearer ${secret:API_TOKEN}"}
	// A document an endpoint echoes in base64, holding the Authorization
	// header it received, after o bytes: the value lands at each offset of
	// a base64 group and is followed by more.
	echo := func(o int, header string) string {
		doc, err := json.Marshal(map[string]string{"auth": header})
		if err != nil {
			panic(err)
		}
		return strings.Repeat("~", o) + string(doc)
	}
	std, url64, rawURL := base64.StdEncoding.EncodeToString, base64.URLEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString
	echoRow := func(o int) diffCase {
		secrets := []scrub.Secret{{Name: "T", Value: fakeToken}, {Name: "U", Value: fakeUni}, {Name: "B", Value: fakeB64}, {Name: "S", Value: fakeSpaced}}
		var in []string
		for _, v := range []string{fakeToken, fakeUni, fakeB64, fakeSpaced} {
			d := []byte(echo(o, "Bearer "+v))
			in = append(in, std(d), url64(d), rawURL(d))
		}
		return scrubRow(fmt.Sprintf("base64 echo at offset %d", o), secrets, strings.Join(in, "\n"), false)
	}
	binary := append(append([]byte{0x00, 0xff, 0xfe, 0x80}, fakeToken...), 0xc3, 0x28, 0x00, 0xff)

	return []diffCase{
		// Scrubbing: each encoding of each kind of value.
		scrubRow("raw value", one("T", fakeToken), "x "+fakeToken+" y", false),
		scrubRow("base64 std", one("T", fakeToken), "b64="+b64(fakeToken)+";", false),
		scrubRow("base64 raw url", one("T", fakeToken), base64.RawURLEncoding.EncodeToString([]byte(fakeToken)), false),
		scrubRow("percent strict and form", one("T", fakeSpaced), "a=p%40ss%20w0rd%20%22quoted%22%20%5C%20%26%20%3C&b=p%40ss+w0rd+%22quoted%22+%5C+%26+%3C", false),
		scrubRow("percent path and encodeURIComponent", one("T", fakeToken), "/fake+tok%2Fen==/ and fake%2Btok%2Fen%3D%3D", false),
		scrubRow("json escaped", one("T", fakeSpaced), `{"v":"p@ss w0rd \"quoted\" \\ \u0026 \u003c"}`, false),
		scrubRow("json escaped control characters", one("T", fakeCtl), `{"v":"line\u000abreak\u0009tab"} and raw `+fakeCtl, false),
		scrubRow("unicode raw and percent-encoded", one("T", fakeUni), fakeUni+" "+url.QueryEscape(fakeUni)+" "+strings.ToLower(url.PathEscape(fakeUni)), false),
		scrubRow("unicode base64", one("T", fakeUni), b64(fakeUni), false),
		scrubRow("percent signs in the value", one("T", fakePct), fakePct+" 100%25fake%252Fnot", false),
		scrubRow("short value shorter than its redaction", one("T", fakeShort), "abcab ab", false),
		scrubRow("basic user", []scrub.Secret{{Name: "T", Value: fakeToken, BasicUsers: []string{"u1", "svc.user"}}},
			"Basic "+b64("u1:"+fakeToken)+" Basic "+b64("svc.user:"+fakeToken)+" Basic "+b64("other:"+fakeToken), false),
		scrubRow("overlapping values: the longest wins", []scrub.Secret{{Name: "SHORT", Value: "tok"}, {Name: "LONG", Value: "tok-tok-long"}}, "tok-tok-long tok-tok tok", false),
		scrubRow("same value under two names: the first wins", []scrub.Secret{{Name: "FIRST", Value: fakeToken}, {Name: "SECOND", Value: fakeToken}}, fakeToken, false),
		scrubRow("adjacent and repeated", one("T", fakeToken), fakeToken+fakeToken+b64(fakeToken)+fakeToken, false),
		scrubRow("nothing to find", one("T", fakeToken), "an ordinary body without it: fake+tok/en= (one = short)", false),
		scrubRow("empty value is ignored", one("T", ""), "anything at all", false),
		scrubRow("no secrets", nil, "anything at all", false),
		scrubRow("empty input", one("T", fakeToken), "", false),
		{Name: "binary body", Kind: "scrub", Secrets: one("T", fakeToken), Input: binary},
		// A value split between two chunks, at every offset.
		scrubRow("split raw at every offset", one("T", fakeToken), "head "+fakeToken+" mid "+fakeToken+" tail", true),
		scrubRow("split unicode and base64 at every offset", one("T", fakeUni), "<"+fakeUni+"|"+b64(fakeUni)+">", true),
		scrubRow("split overlapping values at every offset", []scrub.Secret{{Name: "SHORT", Value: "tok"}, {Name: "LONG", Value: "tok-tok-long"}}, "tok-tok-lon tok-tok-long", true),
		{Name: "split binary at every offset", Kind: "scrub", Secrets: []scrub.Secret{{Name: "T", Value: fakeToken, BasicUsers: []string{"u"}}},
			Input: append(append([]byte{0xff, 0}, b64("u:"+fakeToken)...), binary...), EverySplit: true},

		// A value inside a longer base64 text, at every offset.
		echoRow(0), echoRow(1), echoRow(2), echoRow(3), echoRow(4), echoRow(5),
		scrubRow("base64 echo of a basic credential", []scrub.Secret{{Name: "T", Value: fakeToken, BasicUsers: []string{"u1"}}},
			std([]byte(echo(0, "Basic "+b64("u1:"+fakeToken))))+" "+rawURL([]byte(echo(2, "Basic "+b64("u1:"+fakeToken))))+" "+std([]byte("x=u1:"+fakeToken+"~")), false),
		scrubRow("base64 echo of a value below the core threshold", []scrub.Secret{{Name: "N", Value: fakeNine}, {Name: "S", Value: fakeShort}},
			std([]byte(fakeNine))+" "+std([]byte(fakeNine+"~"))+" "+std([]byte("~"+fakeNine))+" "+std([]byte("~~"+fakeNine+"~"))+" "+std([]byte("~ab~")), false),
		scrubRow("base64 echo of overlapping values: the longest wins", []scrub.Secret{{Name: "SHORT", Value: "token-abcdef"}, {Name: "LONG", Value: "token-abcdef-ghijkl"}},
			std([]byte("~token-abcdef-ghijkl~"))+" "+std([]byte("~token-abcdef-ghi~"))+" "+std([]byte("~~token-abcdef-ghijkl")), false),
		scrubRow("base64 echo near misses", one("T", fakeToken),
			std([]byte(echo(1, "Bearer fake+tok/en=!")))+" "+std([]byte(echo(1, "Bearer fake+tok/eN==")))+" ZmFrZSt0b2svZW49", false),
		scrubRow("split base64 echo at every offset", []scrub.Secret{{Name: "T", Value: fakeToken, BasicUsers: []string{"u1"}}},
			std([]byte(echo(1, "Bearer "+fakeToken)))+"|"+rawURL([]byte(echo(2, "Basic "+b64("u1:"+fakeToken)))), true),

		// Every encoding family internal/scrub decodes, as encoders write
		// it, whole and split at every offset.
		scrubRow("hex lower, upper and mixed case", one("T", fakeToken), hex.EncodeToString([]byte(fakeToken))+" "+strings.ToUpper(hex.EncodeToString([]byte(fakeToken)))+" "+mixCase(hex.EncodeToString([]byte(fakeToken))), true),
		scrubRow("hex of unicode inside longer hex", one("T", fakeUni), "deadbeef"+hex.EncodeToString([]byte(fakeUni))+"0", true),
		scrubRow("hex wrapped across lines", one("T", fakeSpaced), wrapLines(hex.EncodeToString([]byte(fakeSpaced)), 16, "\n"), false),
		scrubRow("hex of a short value: whole only", one("T", fakeSeven), hex.EncodeToString([]byte(fakeSeven))+" 00"+hex.EncodeToString([]byte(fakeSeven))+" x"+hex.EncodeToString([]byte(fakeSeven))+"y", true),
		scrubRow("percent every byte, both cases", one("T", fakeSpaced), pctEvery(fakeSpaced, "%%%02X")+" "+pctEvery(fakeSpaced, "%%%02x"), true),
		scrubRow("percent some bytes, letters too", one("T", fakeToken), "%66ake%2btok%2Fen%3d= and f%61ke+tok/en%3D%3D", true),
		scrubRow("percent unicode in mixed case", one("T", fakeUni), mixCase(url.PathEscape(fakeUni)), true),
		scrubRow("form: plus for space, and a literal plus", []scrub.Secret{{Name: "S", Value: fakeSpaced}, {Name: "T", Value: fakeToken}}, url.QueryEscape(fakeSpaced)+" "+strings.ReplaceAll(url.QueryEscape(fakeToken), "%2B", "+"), true),
		scrubRow("percent signs in the value, escaped", one("T", fakePct), url.QueryEscape(fakePct)+" "+pctEvery(fakePct, "%%%02x"), true),
		scrubRow("json \\/ and \\u for every character", one("T", fakeToken), strings.ReplaceAll(fakeToken, "/", `\/`)+" "+jsonEvery(fakeToken, `\u%04x`)+" "+jsonEvery(fakeToken, `\u%04X`), true),
		scrubRow("json surrogate pairs", one("T", fakeUni), jsonEvery(fakeUni, `\u%04x`)+" "+jsonEvery(fakeUni, `\u%04X`), true),
		scrubRow("json lone surrogates", one("T", "fake-\uFFFD-x-\uFFFD-token"), `fake-\ud83d-x-\ude00-token fake-\uD83D\u0041`, false),
		scrubRow("json short escapes", one("T", fakeCtl), `line\nbreak\ttab line\u000Abreak\u0009tab`, true),
		scrubRow("json escaped html", one("T", fakeSpaced), `p@ss w0rd \"quoted\" \\ \u0026 \u003C`, true),
		scrubRow("html named references", one("T", fakeSpaced), html.EscapeString(fakeSpaced)+" p&commat;ss w0rd &QUOT;quoted&quot; &bsol; &AMP; &LT;", true),
		scrubRow("html decimal and hex references", one("T", fakeToken), htmlEvery(fakeToken, "&#%d;")+" "+htmlEvery(fakeToken, "&#x%x;")+" "+htmlEvery(fakeToken, "&#X%X;"), true),
		scrubRow("html references with leading zeros, no semicolon", one("T", fakeToken), htmlEvery(fakeToken, "&#x%08X;")+" "+htmlEvery(fakeToken, "&#%07d")+" &#000000102ake+tok/en==", true),
		scrubRow("html references of unicode and windows-1252", []scrub.Secret{{Name: "T", Value: "fake-€-‚-ƒ-token"}, {Name: "U", Value: fakeUni}}, "fake-&#128;-&#x82;-&#131;-token "+htmlEvery(fakeUni, "&#%d;"), true),
		scrubRow("html unknown names and bad references stay", one("T", fakeToken), "&amp &ampx; &#; &#x; &#xZ; &#12345678901; &bogus; fake&plus;tok&sol;en&equals;&equals;", true),
		scrubRow("base64 padded and not, both alphabets", one("T", fakeB64), std64(fakeB64)+" "+base64.RawStdEncoding.EncodeToString([]byte(fakeB64))+" "+base64.URLEncoding.EncodeToString([]byte(fakeB64))+" "+base64.RawURLEncoding.EncodeToString([]byte(fakeB64)), true),
		scrubRow("base64 mime, 76 columns and CRLF", one("T", fakeSpaced), wrapLines(std64(strings.Repeat("~", 50)+fakeSpaced+strings.Repeat("~", 40)), 76, "\r\n"), false),
		scrubRow("base64 pem, 64 columns and LF", one("T", fakeUni), "-----BEGIN X-----\n"+wrapLines(std64(strings.Repeat("~", 44)+fakeUni), 64, "\n")+"\n-----END X-----\n", false),
		scrubRow("base64 wrapped, split at every offset", one("T", fakeToken), wrapLines(std64("~~"+fakeToken+"~"), 8, "\r\n"), true),
		scrubRow("base64 with long breaks is two runs", one("T", fakeToken), std64(fakeToken)[:8]+"\n\n\n"+std64(fakeToken)[8:], false),
		scrubRow("base64 short value: whole only", one("T", fakeSeven), std64(fakeSeven)+" "+std64("x"+fakeSeven)+" "+base64.RawURLEncoding.EncodeToString([]byte(fakeSeven))+"=x", true),
		scrubRow("base64 percent-encoded", one("T", fakeB64), url.QueryEscape(std64("~"+fakeB64)), true),
		scrubRow("base64 in json with \\/ and \\n", one("T", fakeB64), strings.ReplaceAll(wrapLines(std64("~~"+fakeB64+fakeB64), 12, `\n`), "/", `\/`), true),
		scrubRow("base64 html-escaped", one("T", fakeB64), strings.NewReplacer("+", "&#43;", "/", "&#x2F;", "=", "&#61;").Replace(std64(fakeB64)), true),
		scrubRow("json inside percent-encoding", one("T", fakeSpaced), url.QueryEscape(`{"k":"p@ss w0rd \"quoted\" \\ \u0026 \u003c"}`), false),
		scrubRow("json with \\/ inside percent-encoding and base64", one("T", fakeToken), url.QueryEscape(`{"k":"fake+tok\/en=="}`)+" "+std64(`{"k":"fake+tok\/en=="}`), true),
		scrubRow("an escape cut short before the value", one("T", "ABCDEFGHIJ"), "%4A%42%43DEFGHIJ %41%42%43DEFGHIJ &#x4ABCDEFGHIJ &#6"+"5BCDEFGHIJ "+`\\u0041BCDEFGHIJ \u0041BCDEFGHIJ`, true),
		scrubRow("overlapping secrets of two names: both go", []scrub.Secret{{Name: "X", Value: "abcd-1234"}, {Name: "Y", Value: "1234-wxyz"}}, "abcd-1234-wxyz "+std64("abcd-1234-wxyz"), true),
		scrubRow("a secret overlapping itself: one redaction", one("A", "aa-aa-aa-aa"), "aa-aa-aa-aa-aa-aa "+std64("aa-aa-aa-aa-aa-aa"), true),
		scrubRow("runs of escape starts", one("T", fakeToken), strings.Repeat("%", 40)+strings.Repeat("&#", 30)+strings.Repeat(`\u00`, 20)+strings.Repeat("&#x0000000", 8)+strings.Repeat("QUJD", 30)+fakeToken, true),
		scrubRow("every encoding at once", []scrub.Secret{{Name: "T", Value: fakeToken, BasicUsers: []string{"u1"}}, {Name: "U", Value: fakeUni}, {Name: "S", Value: fakeSpaced}}, everyEncoding(fakeToken)+everyEncoding(fakeUni)+everyEncoding(fakeSpaced), false),

		// Scrubbing with the scrubber an agent's policy gives (Basic users
		// come from its credentials).
		{Name: "agent policy scrubber", Kind: "agent", Policy: json.RawMessage(diffPolicy), Env: diffEnv, EverySplit: true,
			Input: []byte(fmt.Sprintf("%s|%s|Basic %s|%s|Basic %s", fakeToken, fakeSpaced, b64("svc-user:"+fakeSpaced), b64(fakeUni), b64("keyid:"+fakeUni)))},
		{Name: "agent policy scrubber, base64 echoes", Kind: "agent", Policy: json.RawMessage(diffPolicy), Env: diffEnv, EverySplit: true,
			Input: []byte(std([]byte(echo(0, "Bearer "+fakeToken))) + " " + url64([]byte(echo(1, "Basic "+b64("svc-user:"+fakeSpaced)))) + " " + std([]byte(echo(2, "Basic "+b64("keyid:"+fakeUni)))))},
		{Name: "agent policy with a secret unset", Kind: "agent", Policy: json.RawMessage(diffPolicy), Env: map[string]string{"API_TOKEN": fakeToken},
			Input: []byte(fakeToken + " " + fakeSpaced)},

		// Headers, names and values.
		{Name: "headers", Kind: "headers", Secrets: one("T", fakeToken), Headers: [][2]string{{"x-echo", fakeToken}, {"x-" + fakeShort, "ok"}, {"set-cookie", "s=" + b64(fakeToken)}}},
		{Name: "headers base64 echo", Kind: "headers", Secrets: one("T", fakeUni), Headers: [][2]string{{"x-echo", std([]byte(echo(2, "Bearer "+fakeUni)))}}},
		{Name: "headers unicode", Kind: "headers", Secrets: one("T", fakeUni), Headers: [][2]string{{"x-echo", "«" + fakeUni + "»"}}},
		{Name: "header names in lower case", Kind: "headers", Secrets: []scrub.Secret{{Name: "T", Value: "Fake_Tok3n-AbCdEfGh", BasicUsers: []string{"bot"}}, {Name: "S", Value: "ShOrT"}},
			Headers: [][2]string{{"x-fake_tok3n-abcdefgh", "1"}, {strings.ToLower("x-" + std64("Fake_Tok3n-AbCdEfGh")), "2"}, {strings.ToLower(rawURL([]byte("~Fake_Tok3n-AbCdEfGh~"))), "3"},
				{strings.ToLower(std64("bot:Fake_Tok3n-AbCdEfGh")), "4"}, {"x-short", "5"}, {"content-type", "6"}}},

		// Substitution: who owns what.
		sub("target origin gets its secret", "https://api.example.test/v1", auth, [2]string{"Accept", "text/plain"}),
		sub("basic encoding", "https://api.example.test/", [2]string{"X-Basic", "${basic:svc-user:API_PASS}"}),
		sub("several placeholders and text in one value", "https://api.example.test/", [2]string{"X", "a ${secret:API_TOKEN} b ${basic:u.ser_1-x:API_PASS} c"}),
		sub("host glob with one label", "https://eu.api.example.test/", auth),
		sub("host glob is not the bare domain", "https://api.example.test.evil.test/", auth),
		sub("host glob ** with many labels", "https://a.b.c.files.example.test/", auth),
		sub("host glob ** with none", "https://files.example.test/", auth),
		sub("another port", "https://api.example.test:8443/", auth),
		sub("another scheme", "http://api.example.test/", auth),
		sub("another service's secret", "https://store.example.test:8443/", auth),
		sub("service without secrets", "http://127.0.0.1:8081/", auth),
		sub("origin no service owns", "https://evil.test/", auth),
		sub("wildcard inside a label", "https://s3-eu-west.example.test:8443/", [2]string{"Authorization", "${basic:keyid:STORE_KEY}"}),
		sub("wildcard label on the default port", "https://s3-eu-west.example.test/", [2]string{"Authorization", "${basic:keyid:STORE_KEY}"}),
		sub("host glob never matches an IP", "https://127.0.0.9:8443/", [2]string{"Authorization", "${basic:keyid:STORE_KEY}"}),
		sub("no placeholder goes anywhere", "https://evil.test/", [2]string{"Accept", "$ {not} $x {y}"}),
		func() diffCase {
			c := sub("secret not configured", "https://api.example.test/", auth)
			c.Env = map[string]string{}
			return c
		}(),
		func() diffCase {
			c := sub("secret with a control character", "https://api.example.test/", auth)
			c.Env = map[string]string{"API_TOKEN": fakeCtl}
			return c
		}(),
		func() diffCase {
			c := sub("target override moves ownership: new origin", "http://127.0.0.1:9999/", auth)
			c.Targets = map[string]string{"api": "http://127.0.0.1:9999"}
			return c
		}(),
		func() diffCase {
			c := sub("target override moves ownership: old origin", "https://api.example.test/", auth)
			c.Targets = map[string]string{"api": "http://127.0.0.1:9999"}
			return c
		}(),
		func() diffCase {
			c := sub("target override leaves host globs off the new scheme and port", "http://eu.api.example.test:9999/", auth)
			c.Targets = map[string]string{"api": "http://localhost:9999"}
			return c
		}(),
		func() diffCase {
			c := sub("target override leaves host globs on the declared scheme and port", "https://eu.api.example.test/", auth)
			c.Targets = map[string]string{"api": "http://localhost:9999"}
			return c
		}(),
		// Substitution: malformed placeholders.
		sub("unterminated", "https://api.example.test/", [2]string{"A", "ключ ${secret:API_TOKEN"}),
		sub("unknown kind", "https://api.example.test/", [2]string{"A", "${env:API_TOKEN}"}),
		sub("lower-case name", "https://api.example.test/", [2]string{"A", "${secret:api_token}"}),
		sub("basic without user", "https://api.example.test/", [2]string{"A", "${basic::API_PASS}"}),
		sub("basic without name", "https://api.example.test/", [2]string{"A", "${basic:API_PASS}"}),
		sub("basic user with a space", "https://api.example.test/", [2]string{"A", "${basic:a b:API_PASS}"}),
		sub("stray ${ after a good placeholder", "https://api.example.test/", [2]string{"A", "${secret:API_TOKEN} ${"}),
		sub("empty placeholder", "https://evil.test/", [2]string{"A", "${}"}),
		sub("control character in the placeholder text", "https://api.example.test/", [2]string{"A", "${secret:\x7fX}"}),

		// Target overrides: canonical origin or refusal.
		{Name: "target plain", Kind: "target", Target: "http://127.0.0.1:9999"},
		{Name: "target case, default port, slash", Kind: "target", Target: "HTTPS://API.Example.TEST:443/"},
		{Name: "target trailing dot", Kind: "target", Target: "https://api.example.test."},
		{Name: "target idn", Kind: "target", Target: "https://bücher.example"},
		{Name: "target ipv6", Kind: "target", Target: "http://[::1]:8080"},
		{Name: "target with a path", Kind: "target", Target: "https://api.example.test/v1"},
		{Name: "target with userinfo", Kind: "target", Target: "https://user@api.example.test"},
		{Name: "target another scheme", Kind: "target", Target: "ftp://api.example.test"},
		{Name: "target without scheme", Kind: "target", Target: "api.example.test"},
		{Name: "target bad port", Kind: "target", Target: "http://localhost:99999"},
	}
}

// diffScript runs every row in node and prints the answers as one JSON array.
const diffScript = `
import { pathToFileURL } from "node:url";
const dir = process.env.DAMPER_WORKER_DIR;
const { Scrubber } = await import(pathToFileURL(dir + "/scrub.js").href);
const { AgentSecrets, canonicalTarget } = await import(pathToFileURL(dir + "/secrets.js").href);

let text = "";
for await (const chunk of process.stdin) text += chunk;
const b64 = (b) => Buffer.from(b).toString("base64");

let maxHeld = 0;
let points = [];
function streamed(s, input, sizes) {
  const st = s.stream();
  const parts = [];
  points = [];
  let off = 0;
  for (const n of sizes) {
    const out = st.push(new Uint8Array(input.subarray(off, off + n)));
    parts.push(Buffer.from(out));
    if (out.length > 0) points.push(out.length);
    maxHeld = Math.max(maxHeld, st.held);
    off += n;
  }
  const rest = st.flush();
  if (rest.length > 0) points.push(rest.length);
  parts.push(Buffer.from(rest));
  return b64(Buffer.concat(parts));
}

function scrubbed(s, input, everySplit) {
  maxHeld = 0;
  const out = { whole: b64(s.bytes(input)), holdBack: s.holdBack, streams: {}, points: {} };
  out.streams["1-byte chunks"] = streamed(s, input, Array(input.length).fill(1));
  out.points["1"] = points;
  const sevens = [];
  for (let n = input.length; n > 0; n -= 7) sevens.push(Math.min(7, n));
  out.streams["7-byte chunks"] = streamed(s, input, sevens);
  out.points["7"] = points;
  if (everySplit) {
    for (let k = 0; k <= input.length; k++) out.streams["split at " + k] = streamed(s, input, [k, input.length - k]);
  }
  out.maxHeld = maxHeld;
  return out;
}

function run(c) {
  const input = new Uint8Array(Buffer.from(c.input ?? "", "base64"));
  const targets = new Map(Object.entries(c.targets ?? {}));
  switch (c.kind) {
    case "scrub":
      return scrubbed(new Scrubber(c.secrets ?? []), input, c.everySplit);
    case "agent":
      return scrubbed(new AgentSecrets(c.policy, targets, c.env).scrubber, input, c.everySplit);
    case "headers":
      return { headers: new Scrubber(c.secrets ?? []).headers(c.headers) };
    case "substitute": {
      const origin = new URL(c.url).origin;
      try {
        return { origin, headers: new AgentSecrets(c.policy, targets, c.env).substitute(c.headers, origin) };
      } catch (e) {
        if (!e.kind) throw e;
        return { origin, error: { kind: e.kind, message: e.message } };
      }
    }
    case "target":
      try {
        return { origin: canonicalTarget(c.target) };
      } catch (e) {
        return { targetError: e.message };
      }
  }
  throw new Error("unknown kind " + c.kind);
}

const answers = JSON.parse(text).map((c) => {
  try {
    return run(c);
  } catch (e) {
    return { crash: String(e?.stack ?? e) };
  }
});
process.stdout.write(JSON.stringify(answers));
`

// runNode sends the rows to the JavaScript implementation and returns its
// answers, one per row.
func runNode(t *testing.T, cases []diffCase) []jsAnswer {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (Node.js >= 20) is required: it runs the Workers host's secrets code")
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	dir := filepath.Join(root, "worker")
	// Read here too, so that go test's result cache sees node's inputs: an
	// edit to them runs the test again.
	for _, f := range []string{"secrets.js", "scrub.js"} {
		_, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
	}
	for i := range cases {
		for _, s := range cases[i].Secrets {
			cases[i].JSSecrets = append(cases[i].JSSecrets, jsSecret(s))
		}
	}
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(node, "--input-type=module", "--eval", diffScript)
	cmd.Env = append(cmd.Environ(), "DAMPER_WORKER_DIR="+dir)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())
	var answers []jsAnswer
	require.NoError(t, json.Unmarshal(out, &answers), "node printed: %s", out)
	require.Len(t, answers, len(cases))
	return answers
}

func TestSecretsMatchGo(t *testing.T) {
	cases := diffCases()
	answers := runNode(t, cases)
	for i, c := range cases {
		js := answers[i]
		t.Run(c.Name, func(t *testing.T) {
			require.Empty(t, js.Crash, "the JavaScript threw")
			switch c.Kind {
			case "scrub":
				checkScrubbed(t, scrub.New(c.Secrets...), c.Input, js)
			case "agent":
				checkScrubbed(t, agentScrubber(t, c), c.Input, js)
			case "headers":
				var hs []wire.Header
				for _, h := range c.Headers {
					hs = append(hs, wire.Header(h))
				}
				var want [][2]string
				for _, h := range scrub.New(c.Secrets...).Headers(hs) {
					want = append(want, [2]string(h))
				}
				assert.Equal(t, want, js.Headers)
			case "substitute":
				checkSubstituted(t, c, js)
			case "target":
				p := policy.Policy{Version: policy.Version, Services: []policy.Service{{Name: "svc", Target: "https://example.test", Level: policy.AllowAll}}}
				if err := p.SetTarget("svc", c.Target); err != nil {
					assert.NotEmpty(t, js.TargetError, "Go refuses (%v); JavaScript accepts as %s", err, js.Origin)
				} else {
					assert.Empty(t, js.TargetError, "Go accepts as %s", p.Services[0].Target)
					assert.Equal(t, p.Services[0].Target, js.Origin)
				}
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
		})
	}
}

// checkScrubbed: the JavaScript scrubbed input whole, and streamed in every
// chunking, into what Go's scrubber makes of it whole.
func checkScrubbed(t *testing.T, s *scrub.Scrubber, input []byte, js jsAnswer) {
	t.Helper()
	want := s.Bytes(input)
	assert.Equal(t, s.HoldBack(), js.HoldBack, "the most a stream holds back")
	assert.LessOrEqual(t, js.MaxHeld, js.HoldBack, "held back by a stream")
	for _, sizes := range []int{1, 7, len(input) + 1} {
		var got []byte
		r := scrub.NewReader(io.NopCloser(iotest.OneByteReader(bytes.NewReader(input))), s)
		buf := make([]byte, sizes)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		assert.Equal(t, string(want), string(got), "Go streamed, reads of %d", sizes)
	}
	// The same bytes at the same points: each read of Go's reader (with a
	// buffer larger than anything it holds) ends at the first chunk that
	// handed anything out, as each of the JavaScript's non-empty pushes.
	if !s.Empty() {
		for _, size := range []int{1, 7} {
			r := scrub.NewReader(io.NopCloser(&chunkReader{b: input, n: size}), s)
			buf := make([]byte, len(input)+s.HoldBack()+1024)
			points := []int{}
			for {
				n, err := r.Read(buf)
				if n > 0 {
					points = append(points, n)
				}
				if err != nil {
					break
				}
			}
			assert.Equal(t, points, js.Points[fmt.Sprint(size)], "what a stream hands out after each %d-byte chunk", size)
		}
	}
	assert.Equal(t, string(want), string(js.Whole), "whole")
	require.NotEmpty(t, js.Streams)
	for name, got := range js.Streams {
		assert.Equal(t, string(want), string(got), "streamed, %s", name)
	}
}

// chunkReader reads b n bytes at a time.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

func checkSubstituted(t *testing.T, c diffCase, js jsAnswer) {
	t.Helper()
	scheme, rest, _ := strings.Cut(c.URL, "://")
	host, _, _ := strings.Cut(rest, "/")
	origin := scheme + "://" + host
	require.True(t, policy.IsCanonical(c.URL), "rows use canonical URLs, as the guest sends")
	require.Equal(t, origin, js.Origin, "the origin of the URL")

	var hs []wire.Header
	for _, h := range c.Headers {
		hs = append(hs, wire.Header{h[0], h[1]})
	}
	got, err := hostcore.Substitute(hs, origin, compileDiffPolicy(t, c), envLookup(c.Env))
	if err != nil {
		require.NotNil(t, js.Error, "Go refuses (%v); JavaScript sends %v", err, js.Headers)
		assert.Equal(t, errorKind(err), js.Error.Kind)
		assert.Equal(t, err.Error(), js.Error.Message)
		for _, v := range c.Env {
			assert.NotContains(t, js.Error.Message, v, "the message holds a secret value")
		}
		return
	}
	require.Nil(t, js.Error, "Go sends %v; JavaScript refuses", got)
	assert.Equal(t, fromWireHeaders(got), js.Headers)
}

// agentScrubber is the scrubber the hosts build for an agent's policy.
func agentScrubber(t *testing.T, c diffCase) *scrub.Scrubber {
	t.Helper()
	p, err := policy.Parse(c.Policy)
	require.NoError(t, err)
	e, err := policy.Compile(p)
	require.NoError(t, err)
	return hostcore.AgentScrubber(e, envLookup(c.Env))
}

// compileDiffPolicy compiles a row's policy with its target overrides, as
// the local host does.
func compileDiffPolicy(t *testing.T, c diffCase) *policy.Engine {
	t.Helper()
	p, err := policy.Parse(c.Policy)
	require.NoError(t, err)
	for name, target := range c.Targets {
		require.NoError(t, p.SetTarget(name, target))
	}
	e, err := policy.Compile(p)
	require.NoError(t, err)
	return e
}

// envLookup reads secrets the way the Workers host reads its env: an empty
// value is not set.
func envLookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok && v != ""
	}
}

// errorKind classifies a Substitute error the way worker/secrets.js names
// its refusals.
func errorKind(err error) string {
	switch msg := err.Error(); {
	case errors.Is(err, hostcore.ErrNotOwned):
		return "not_owned"
	case strings.HasSuffix(msg, "is not configured"):
		return "not_configured"
	case strings.HasSuffix(msg, "a secret holds a control character"):
		return "control"
	default:
		return "malformed"
	}
}

func fromWireHeaders(hs []wire.Header) [][2]string {
	out := make([][2]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, [2]string(h))
	}
	return out
}

func std64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// mixCase alternates the case of s's letters.
func mixCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if i%2 == 0 {
			b[i] = byte(strings.ToUpper(string(c))[0])
		} else if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func wrapLines(s string, n int, nl string) string {
	var w strings.Builder
	for len(s) > n {
		w.WriteString(s[:n] + nl)
		s = s[n:]
	}
	w.WriteString(s)
	return w.String()
}

// pctEvery percent-encodes every byte of s with format.
func pctEvery(s, format string) string {
	var w strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&w, format, s[i])
	}
	return w.String()
}

// jsonEvery writes every UTF-16 unit of s as a \u escape with format.
func jsonEvery(s, format string) string {
	var w strings.Builder
	for _, r := range s {
		if r >= 0x10000 {
			fmt.Fprintf(&w, format, 0xD800+(r-0x10000)>>10)
			fmt.Fprintf(&w, format, 0xDC00+(r-0x10000)&0x3FF)
		} else {
			fmt.Fprintf(&w, format, r)
		}
	}
	return w.String()
}

// htmlEvery writes every character of s as a numeric reference with format.
func htmlEvery(s, format string) string {
	var w strings.Builder
	for _, r := range s {
		fmt.Fprintf(&w, format, r)
	}
	return w.String()
}

// everyEncoding is secret in each form encoders write, one a line.
func everyEncoding(secret string) string {
	js, _ := json.Marshal(secret)
	return strings.Join([]string{secret, hex.EncodeToString([]byte(secret)), url.QueryEscape(secret), url.PathEscape(secret),
		pctEvery(secret, "%%%02x"), string(js), jsonEvery(secret, `\u%04X`), html.EscapeString(secret), htmlEvery(secret, "&#%d;"),
		htmlEvery(secret, "&#x%X;"), std64(secret), base64.RawURLEncoding.EncodeToString([]byte(secret)), std64("Basic " + std64("u1:"+secret)),
		wrapLines(std64(strings.Repeat(secret, 5)), 76, "\r\n")}, "\n") + "\n"
}
