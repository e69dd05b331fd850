// Package effectcases is the one table of effect cases every host must
// answer alike: agenttest in-process, `damper serve` under wazero and the
// Worker under workerd. Each case issues raw effects through the
// probe.effects agent (tests/agents) and states what each must answer: the
// SQL rules of a Durable Object, what a fetch may carry and how secrets
// come back, and the errors of effects that are malformed or unknown.
package effectcases

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/tests/agents"
)

// Secret is the made-up value of ECHO_TOKEN that the hosts run with.
const Secret = "fake-echo-token-4f1d2c/+= x"

// Fakes are the loopback servers of probe.effects' services.
type Fakes struct {
	Echo, Plain *httptest.Server
}

// NewFakes starts the servers: echo answers the Authorization header it
// got, in its body and in a header; plain answers the method and path,
// and /big a body one byte over the whole-body limit.
func NewFakes(t testing.TB) *Fakes {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		io.WriteString(w, "auth="+r.Header.Get("Authorization"))
	}))
	big := bytes.Repeat([]byte("x"), wire.MaxWholeBody+1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(echo.Close)
	t.Cleanup(plain.Close)
	return &Fakes{Echo: echo, Plain: plain}
}

// Targets point probe.effects' services at the fakes.
func (f *Fakes) Targets() map[string]string {
	return map[string]string{"echo": f.Echo.URL, "plain": f.Plain.URL}
}

// Handler serves both fakes by the request's host, for agenttest.Host.HTTP.
func (f *Fakes) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, s := range []*httptest.Server{f.Echo, f.Plain} {
			if "http://"+r.Host == s.URL {
				s.Config.Handler.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "no fake at "+r.Host, http.StatusBadGateway)
	})
}

// Case is effects to issue on a fresh agent instance and what each must
// answer.
type Case struct {
	Name    string
	Effects []agents.RawEffect // "{{echo}}" and "{{plain}}" in args stand for the fakes' origins
	Want    []Want
}

// Want is what one effect must answer. ErrorType "" means a value.
type Want struct {
	ErrorType string
	Message   string // a part of the error's message
	Value     string // the value's JSON exactly (JSONEq), when set
	Status    int    // a fetch value's status, when set
	Body      string // a fetch value's body, when Status is set
}

func sql(stmts ...string) agents.RawEffect {
	return agents.RawEffect{Type: wire.EffectSQL, Args: json.RawMessage(`{"statements":[` + strings.Join(stmts, ",") + `]}`)}
}

func effect(typ, args string) agents.RawEffect {
	return agents.RawEffect{Type: typ, Args: json.RawMessage(args)}
}

// Cases is the table.
var Cases = []Case{
	{
		Name: "a batch runs as one transaction and numbers bind as REAL",
		Effects: []agents.RawEffect{
			sql(`{"sql":"CREATE TABLE t (x INTEGER, y)"}`, `{"sql":"INSERT INTO t VALUES (?, ?)","args":[5, 5]}`, `{"sql":"SELECT x, typeof(x), y, typeof(y) FROM t"}`),
			sql(`{"sql":"SELECT ?, ?, ?, typeof(?)","args":[true, false, null, 2.5]}`),
		},
		Want: []Want{
			{Value: `{"results":[{"columns":[],"rows":[]},{"columns":[],"rows":[]},{"columns":["x","typeof(x)","y","typeof(y)"],"rows":[[5,"integer",5,"real"]]}]}`},
			{Value: `{"results":[{"columns":["?","?","?","typeof(?)"],"rows":[[1,0,null,"real"]]}]}`},
		},
	},
	{
		Name: "transaction control is refused, in any spelling",
		Effects: []agents.RawEffect{
			sql(`{"sql":"BEGIN"}`),
			sql(`{"sql":"  /* c */ savepoint s"}`),
			sql(`{"sql":"-- c\ncommit"}`),
		},
		Want: []Want{
			{ErrorType: wire.ErrSQL, Message: "BEGIN is not allowed"},
			{ErrorType: wire.ErrSQL, Message: "SAVEPOINT is not allowed"},
			{ErrorType: wire.ErrSQL, Message: "COMMIT is not allowed"},
		},
	},
	{
		Name: "the host's tables (event log, run ledger) are refused, in any spelling",
		Effects: []agents.RawEffect{
			sql(`{"sql":"SELECT * FROM _damper_host_events"}`),
			sql(`{"sql":"UPDATE \"_DAMPER_HOST_RUNS\" SET status = 'done'"}`),
			sql(`{"sql":"SELECT 1"}`, `{"sql":"DELETE FROM [_Damper_Host_Events]"}`),
		},
		Want: []Want{
			{ErrorType: wire.ErrSQL, Message: "statement 0: tables named _damper_host_* belong to the host"},
			{ErrorType: wire.ErrSQL, Message: "statement 0: tables named _damper_host_* belong to the host"},
			{ErrorType: wire.ErrSQL, Message: "statement 1: tables named _damper_host_* belong to the host"},
		},
	},
	{
		Name: "emitted events are of the closed set, JSON, and not too large",
		Effects: []agents.RawEffect{
			effect(wire.EffectEmit, `{"events":[{"type":"text.delta","turn":"t1","data":{"text":"hi"}}]}`),
			effect(wire.EffectEmit, `{"events":[{"type":"probe.tick","data":{}}]}`),
			effect(wire.EffectEmit, `{"events":[{"type":"log","data":{"level":"info","message":"`+strings.Repeat("x", wire.MaxEventData)+`"}}]}`),
		},
		Want: []Want{
			{Value: `{}`},
			{ErrorType: wire.ErrBadEffect, Message: `"probe.tick" is not an event type`},
			{ErrorType: wire.ErrBadEffect, Message: "over 262144"},
		},
	},
	{
		Name:    "another database cannot be attached",
		Effects: []agents.RawEffect{sql(`{"sql":"ATTACH DATABASE 'other.sqlite' AS other"}`)},
		Want:    []Want{{ErrorType: wire.ErrSQL, Message: "statement 0"}},
	},
	{
		Name: "a failing statement rolls the whole batch back",
		Effects: []agents.RawEffect{
			sql(`{"sql":"CREATE TABLE r (v TEXT)"}`),
			sql(`{"sql":"INSERT INTO r VALUES ('lost')"}`, `{"sql":"SELECT * FROM missing"}`),
			sql(`{"sql":"SELECT count(*) AS n FROM r"}`),
		},
		Want: []Want{
			{Value: `{"results":[{"columns":[],"rows":[]}]}`},
			{ErrorType: wire.ErrSQL, Message: "statement 1"},
			{Value: `{"results":[{"columns":["n"],"rows":[[0]]}]}`},
		},
	},
	{
		Name: "values a Durable Object cannot return exactly are refused",
		Effects: []agents.RawEffect{
			sql(`{"sql":"SELECT 9007199254740993"}`),
			sql(`{"sql":"SELECT x'00ff'"}`),
			sql(`{"sql":"SELECT 9007199254740991 AS n"}`),
		},
		Want: []Want{
			{ErrorType: wire.ErrSQL, Message: "2^53"},
			{ErrorType: wire.ErrSQL, Message: "BLOB"},
			{Value: `{"results":[{"columns":["n"],"rows":[[9007199254740991]]}]}`},
		},
	},
	{
		Name: "malformed sql effects",
		Effects: []agents.RawEffect{
			effect(wire.EffectSQL, `{"statements":[]}`),
			effect(wire.EffectSQL, `{"statements":"SELECT 1"}`),
		},
		Want: []Want{{ErrorType: wire.ErrBadEffect}, {ErrorType: wire.ErrBadEffect}},
	},
	{
		Name: "a secret goes only to the origin that owns it, and comes back scrubbed",
		Effects: []agents.RawEffect{
			effect(wire.EffectFetch, `{"method":"GET","url":"{{echo}}/x","headers":[["Authorization","Bearer ${secret:ECHO_TOKEN}"]]}`),
			effect(wire.EffectFetch, `{"method":"GET","url":"{{plain}}/x","headers":[["Authorization","Bearer ${secret:ECHO_TOKEN}"]]}`),
			effect(wire.EffectFetch, `{"method":"GET","url":"{{echo}}/x","headers":[["Authorization","${secret:NOT_IN_POLICY}"]]}`),
			effect(wire.EffectFetch, `{"method":"GET","url":"{{echo}}/x","headers":[["Authorization","${env:ECHO_TOKEN}"]]}`),
		},
		Want: []Want{
			{Status: 200, Body: "auth=Bearer [REDACTED:ECHO_TOKEN]"},
			{ErrorType: wire.ErrFetch, Message: "ECHO_TOKEN"},
			{ErrorType: wire.ErrFetch, Message: "NOT_IN_POLICY"},
			{ErrorType: wire.ErrFetch, Message: "placeholder"},
		},
	},
	{
		Name: "the host sends only canonical URLs and sets its own headers",
		Effects: []agents.RawEffect{
			effect(wire.EffectFetch, `{"method":"GET","url":"{{plain}}/a/../b"}`),
			effect(wire.EffectFetch, `{"method":"GET","url":"{{plain}}/x","headers":[["Host","elsewhere.example"]]}`),
			effect(wire.EffectFetch, `{"method":"GET","url":"{{plain}}/x","headers":[["Accept-Encoding","gzip"]]}`),
			effect(wire.EffectFetch, `{"method":"POST","url":"{{plain}}/ok"}`),
		},
		Want: []Want{
			{ErrorType: wire.ErrFetch, Message: "canonical"},
			{ErrorType: wire.ErrFetch, Message: "set by the host"},
			{ErrorType: wire.ErrFetch, Message: "set by the host"},
			{Status: 200, Body: "POST /ok"},
		},
	},
	{
		Name:    "a whole body over the limit is refused with the advice to stream",
		Effects: []agents.RawEffect{effect(wire.EffectFetch, `{"method":"GET","url":"{{plain}}/big"}`)},
		Want:    []Want{{ErrorType: wire.ErrFetch, Message: "stream"}},
	},
	{
		Name: "unknown and malformed effects are errors, never traps",
		Effects: []agents.RawEffect{
			effect("probe.nothing", `{}`),
			effect(wire.EffectFetch, `{"url":5}`),
			effect(wire.EffectSleep, `{"ms":-1}`),
			effect(wire.EffectRead, `{"handle":99,"max":10}`),
			effect(wire.EffectSleep, `{"ms":1}`),
		},
		Want: []Want{
			{ErrorType: wire.ErrUnknownEffect},
			{ErrorType: wire.ErrBadEffect},
			{ErrorType: wire.ErrBadEffect},
			{ErrorType: wire.ErrBadEffect},
			{Value: `{}`},
		},
	},
}

// Run runs every case through do, which runs probe.effects with in on the
// agent instance id of the host under test and returns its result JSON.
func Run(t *testing.T, f *Fakes, do func(t *testing.T, id string, in agents.EffectsIn) []byte) {
	for i, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			in := agents.EffectsIn{Effects: make([]agents.RawEffect, len(c.Effects))}
			for j, e := range c.Effects {
				args := strings.NewReplacer("{{echo}}", f.Echo.URL, "{{plain}}", f.Plain.URL).Replace(string(e.Args))
				in.Effects[j] = agents.RawEffect{Type: e.Type, Args: json.RawMessage(args)}
			}
			raw := do(t, fmt.Sprintf("case%d", i), in)
			assert.NotContains(t, string(raw), Secret, "the secret never comes back")
			var out agents.EffectsOut
			require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
			require.Len(t, out.Results, len(c.Want), "%s", raw)
			for j, w := range c.Want {
				got := out.Results[j]
				if w.ErrorType != "" {
					assert.Equal(t, w.ErrorType, got.ErrorType, "effect %d: %s", j, raw)
					assert.Contains(t, got.Message, w.Message, "effect %d", j)
					continue
				}
				require.Empty(t, got.ErrorType, "effect %d: %s", j, got.Message)
				if w.Value != "" {
					assert.JSONEq(t, w.Value, string(got.Value), "effect %d", j)
				}
				if w.Status != 0 {
					var v struct {
						Status int    `json:"status"`
						Body   string `json:"body"`
					}
					require.NoError(t, json.Unmarshal(got.Value, &v))
					body, err := base64.StdEncoding.DecodeString(v.Body)
					require.NoError(t, err)
					assert.Equal(t, w.Status, v.Status, "effect %d", j)
					assert.Equal(t, w.Body, string(body), "effect %d", j)
				}
			}
		})
	}
}
