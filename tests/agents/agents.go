// Package agents registers the probe agents that the hosts' ABI tests and
// the end-to-end suite run: each exercises one part of the contract
// (docs/abi.md) with a small, fixed input and output. Their names and
// shapes are what those tests are written against; change them together.
//
// The probes that fetch may reach one service, "fake" (FakePolicy): its
// target is a placeholder the hosts point at the tests' loopback server
// with DAMPER_TARGETS=fake=http://127.0.0.1:PORT. probe.policy has a
// policy of its own (PolicyPolicy) for the tests of enforcement, and
// probe.report the same in report mode (ReportPolicy).
package agents

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/abi"
	"github.com/damperdev/damper/runtime/agent"
)

// FakePolicy lets the fetching probes do anything to the service "fake",
// with the headers the tests send.
var FakePolicy = must(policy.New(policy.NewService("fake", "http://127.0.0.1:9").
	Level(policy.AllowAll).
	AddHeaders("X-Probe", "Content-Type")))

// PolicyPolicy is probe.policy's: service "api" (the secret
// PROBE_API_TOKEN sent as a Bearer token; GET /allowed/** (rule
// "allowed"), GET /limited twice per agent instance (rule "limited"),
// GET /redirect-out (rule "redirect-out"), nothing else) and service
// "other" (no secret; reads only; X-Smuggle among its headers). The
// targets are placeholders the tests override.
var PolicyPolicy = must(policy.New(
	policy.NewService("api", "http://127.0.0.1:9").
		Credential("Authorization", "Bearer ${secret:PROBE_API_TOKEN}").
		Level(policy.DenyAll).
		Allow(
			policy.On("/allowed/**", "GET").ID("allowed"),
			policy.On("/limited", "GET").Limit(2).ID("limited"),
			policy.On("/redirect-out", "GET").ID("redirect-out"),
		),
	policy.NewService("other", "http://127.0.0.1:10").
		Level(policy.AllowRead).
		AddHeaders("X-Smuggle"),
))

// ReportPolicy is PolicyPolicy in report mode: every request is decided
// and sent, and what enforcement would have denied is reported.
var ReportPolicy = func() policy.Policy {
	p := PolicyPolicy
	p.Mode = policy.Report
	return p
}()

func must(p policy.Policy, err error) policy.Policy {
	if err != nil {
		panic(err)
	}
	return p
}

func init() {
	fake := agent.WithPolicy(FakePolicy)
	agent.Register("probe.state", state)
	agent.Register("probe.batch", batch, fake)
	agent.Register("probe.stream", stream, fake)
	agent.Register("probe.fetch", fetch, fake)
	agent.Register("probe.sleep", sleep)
	agent.Register("probe.slow", slow, fake)
	agent.Register("probe.huge", huge)
	agent.Register("probe.unknown", unknown)
	agent.Register("probe.crash", crash)
	agent.Register("probe.fail", fail)
	agent.Register("probe.emit", emit)
	agent.Register("probe.roundtrip", roundtrip, fake)
	agent.Register("probe.policy", policyProbe, agent.WithPolicy(PolicyPolicy))
	agent.Register("probe.report", policyProbe, agent.WithPolicy(ReportPolicy))
	agent.Register("probe.effects", effects, agent.WithPolicy(EffectsPolicy))
}

// EffectsPolicy is probe.effects': service "echo" (the secret
// ECHO_TOKEN as a Bearer token, any request) and "plain" (no secret,
// any request); the targets are placeholders the tests override.
var EffectsPolicy = must(policy.New(
	policy.NewService("echo", "http://127.0.0.1:11").
		Level(policy.AllowAll).
		Credential("Authorization", "Bearer ${secret:ECHO_TOKEN}"),
	policy.NewService("plain", "http://127.0.0.1:12").Level(policy.AllowAll),
))

// EffectsIn lists raw effects for probe.effects to issue, one after the
// other, with args exactly as given: the hosts' shared table of effect
// cases (tests/effectcases) drives every host through it.
type EffectsIn struct {
	Effects []RawEffect `json:"effects"`
}

// RawEffect is an effect's type and its args JSON.
type RawEffect struct {
	Type string          `json:"type"`
	Args json.RawMessage `json:"args"`
}

// EffectsOut holds each effect's value or error, in order.
type EffectsOut struct {
	Results []EffectResult `json:"results"`
}

// EffectResult is one effect's answer: its value, or its error's type and
// message.
type EffectResult struct {
	Value     json.RawMessage `json:"value,omitempty"`
	ErrorType string          `json:"error_type,omitempty"`
	Message   string          `json:"message,omitempty"`
}

func effects(ctx *agent.Context, in EffectsIn) (EffectsOut, error) {
	out := EffectsOut{Results: make([]EffectResult, len(in.Effects))}
	for i, e := range in.Effects {
		var v json.RawMessage
		var args any
		if len(e.Args) > 0 {
			args = e.Args
		}
		err := abi.Perform(ctx, e.Type, args, &v)
		var ee *abi.EffectError
		switch {
		case errors.As(err, &ee):
			out.Results[i] = EffectResult{ErrorType: ee.Type, Message: ee.Message}
		case err != nil:
			return out, err
		default:
			out.Results[i] = EffectResult{Value: v}
		}
	}
	return out, nil
}

// StateIn asks for one state operation: get, set or del of key.
type StateIn struct {
	Op    string          `json:"op"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
}

// StateOut is what the key holds after the operation: set answers the
// value set; del answers found false.
type StateOut struct {
	Found bool            `json:"found"`
	Value json.RawMessage `json:"value"`
}

func state(ctx *agent.Context, in StateIn) (StateOut, error) {
	switch in.Op {
	case "get":
		var v json.RawMessage
		found, err := ctx.State().Get(in.Key, &v)
		if err != nil {
			return StateOut{}, err
		}
		return StateOut{Found: found, Value: v}, nil
	case "set":
		if len(in.Value) == 0 {
			in.Value = json.RawMessage("null")
		}
		if err := ctx.State().Set(in.Key, in.Value); err != nil {
			return StateOut{}, err
		}
		return StateOut{Found: true, Value: in.Value}, nil
	case "del":
		return StateOut{}, ctx.State().Delete(in.Key)
	}
	return StateOut{}, fmt.Errorf("unknown op %q: want get, set or del", in.Op)
}

// BatchIn lists URLs to fetch concurrently.
type BatchIn struct {
	URLs []string `json:"urls"`
	// Sizes answers each body's length in Bytes instead of the body.
	Sizes bool `json:"sizes,omitempty"`
}

// BatchOut has one response per URL, in input order.
type BatchOut struct {
	Responses []BatchResponse `json:"responses"`
}

// BatchResponse is a fetched status and body, or the fetch's error.
type BatchResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Bytes  int    `json:"bytes,omitempty"`
	Error  string `json:"error"`
}

// batch fetches every URL in goroutines of one Group: the host sees one
// batch of len(urls) fetch effects.
func batch(ctx *agent.Context, in BatchIn) (BatchOut, error) {
	out := BatchOut{Responses: make([]BatchResponse, len(in.URLs))}
	g := ctx.Group()
	for i, u := range in.URLs {
		g.Go(func() error {
			r := &out.Responses[i]
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				r.Error = err.Error()
				return nil
			}
			resp, err := ctx.Fetch(req)
			if err != nil {
				r.Error = err.Error()
				return nil
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				r.Error = err.Error()
			}
			r.Status = resp.StatusCode
			if in.Sizes {
				r.Bytes = len(body)
			} else {
				r.Body = string(body)
			}
			return nil
		})
	}
	return out, g.Wait()
}

// StreamIn names a URL to read through Context.Transport, Max bytes per read
// (default 4096).
type StreamIn struct {
	URL string `json:"url"`
	Max int    `json:"max,omitempty"`
}

// StreamOut describes the body read: its size, its SHA-256 and the number
// of read effects it took.
type StreamOut struct {
	Status int    `json:"status"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	Reads  int    `json:"reads"`
}

func stream(ctx *agent.Context, in StreamIn) (StreamOut, error) {
	if in.Max <= 0 {
		in.Max = 4096
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
	if err != nil {
		return StreamOut{}, err
	}
	resp, err := ctx.Transport().RoundTrip(req)
	if err != nil {
		return StreamOut{}, err
	}
	defer resp.Body.Close()
	out := StreamOut{Status: resp.StatusCode}
	h := sha256.New()
	buf := make([]byte, in.Max)
	for {
		// Each Read of a streamed body is one read effect.
		n, err := resp.Body.Read(buf)
		out.Reads++
		out.Bytes += n
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return StreamOut{}, err
		}
	}
	out.SHA256 = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// FetchIn is one request; Method defaults to GET.
type FetchIn struct {
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// FetchOut is the response, its body read whole.
type FetchOut struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// fetch sends exactly one request: through Transport, which returns a
// redirect as it is (Fetch would follow it), so the tests see what the
// host answered. The body is read whole.
func fetch(ctx *agent.Context, in FetchIn) (FetchOut, error) {
	req, err := http.NewRequestWithContext(ctx, in.Method, in.URL, strings.NewReader(in.Body))
	if err != nil {
		return FetchOut{}, err
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	resp, err := ctx.Transport().RoundTrip(req)
	if err != nil {
		return FetchOut{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return FetchOut{}, err
	}
	return FetchOut{Status: resp.StatusCode, Headers: resp.Header, Body: string(body)}, nil
}

// SleepIn is how long to sleep.
type SleepIn struct {
	Ms int `json:"ms"`
}

// SleepOut is how long the probe asked to sleep.
type SleepOut struct {
	SleptMs int `json:"slept_ms"`
}

func sleep(ctx *agent.Context, in SleepIn) (SleepOut, error) {
	if err := ctx.Sleep(time.Duration(in.Ms) * time.Millisecond); err != nil {
		return SleepOut{}, err
	}
	return SleepOut{SleptMs: in.Ms}, nil
}

// SlowIn asks probe.slow to store "before" under Key, GET Ping (when set:
// the test learns the run has reached its sleep), sleep Ms, then store
// "after" under Key. With Read it only reports what Key holds: the state
// belongs to the agent instance, so only probe.slow sees it.
type SlowIn struct {
	Key  string `json:"key"`
	Ms   int    `json:"ms,omitempty"`
	Ping string `json:"ping,omitempty"`
	Read bool   `json:"read,omitempty"`
}

// SlowOut is what Key holds at the end of the run ("" for nothing).
type SlowOut struct {
	Stored string `json:"stored"`
}

// slow is a run that outlives a short run timeout or its client: what it
// committed before the sleep must stay, and "after" must never be stored
// by a run canceled while it sleeps.
func slow(ctx *agent.Context, in SlowIn) (SlowOut, error) {
	if in.Read {
		var v string
		_, err := ctx.State().Get(in.Key, &v)
		return SlowOut{Stored: v}, err
	}
	if err := ctx.State().Set(in.Key, "before"); err != nil {
		return SlowOut{}, err
	}
	if in.Ping != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.Ping, nil)
		if err != nil {
			return SlowOut{}, err
		}
		resp, err := ctx.Fetch(req)
		if err != nil {
			return SlowOut{}, err
		}
		resp.Body.Close()
	}
	if err := ctx.Sleep(time.Duration(in.Ms) * time.Millisecond); err != nil {
		return SlowOut{}, err
	}
	if err := ctx.State().Set(in.Key, "after"); err != nil {
		return SlowOut{}, err
	}
	return SlowOut{Stored: "after"}, nil
}

// HugeIn is how many MiB of output probe.huge returns.
type HugeIn struct {
	MiB int `json:"mib"`
}

// HugeOut is one string of MiB mebibytes.
type HugeOut struct {
	Data string `json:"data"`
}

// huge returns an output of about MiB mebibytes in one export call: past
// the hosts' 64 MiB output cap, the module instance counts as trapped.
func huge(_ *agent.Context, in HugeIn) (HugeOut, error) {
	return HugeOut{Data: strings.Repeat("x", in.MiB<<20)}, nil
}

// UnknownOut is the error type the host answered an effect it does not
// perform with: unknown_effect.
type UnknownOut struct {
	ErrorType string `json:"error_type"`
}

// unknown issues an effect no host performs, through abi.Perform: agent
// code has no way to name an effect type.
func unknown(ctx *agent.Context, _ struct{}) (UnknownOut, error) {
	err := abi.Perform(ctx, "probe.nonexistent", struct{}{}, nil)
	var ee *abi.EffectError
	if !errors.As(err, &ee) {
		return UnknownOut{}, fmt.Errorf("want an effect error, got %v", err)
	}
	return UnknownOut{ErrorType: ee.Type}, nil
}

// CrashIn picks how to kill the module instance: "panic" (a fatal panic in
// a goroutine the runtime cannot recover) or "exit" (os.Exit(3)).
type CrashIn struct {
	Mode string `json:"mode"`
}

// crash makes the module instance trap; it touches no storage first.
func crash(_ *agent.Context, in CrashIn) (struct{}, error) {
	switch in.Mode {
	case "panic":
		// A raw goroutine, deliberately untracked: its panic is fatal.
		// Blocking on the channel lets it run before the handler returns.
		never := make(chan struct{})
		go func() { panic("probe crash") }()
		<-never
	case "exit":
		os.Exit(3)
	}
	return struct{}{}, fmt.Errorf("unknown mode %q: want panic or exit", in.Mode)
}

// fail returns an error: a 500 agent_error with message "probe failure".
func fail(*agent.Context, struct{}) (struct{}, error) {
	return struct{}{}, errors.New("probe failure")
}

// EmitIn is how many events to emit.
type EmitIn struct {
	Events int `json:"events"`
}

// EmitOut is how many events were emitted.
type EmitOut struct {
	Emitted int `json:"emitted"`
}

// emit emits events probe.tick with data {"n": 0}, {"n": 1}, ... and logs
// one info line.
func emit(ctx *agent.Context, in EmitIn) (EmitOut, error) {
	for i := range in.Events {
		if err := ctx.Emit("probe.tick", map[string]int{"n": i}); err != nil {
			return EmitOut{Emitted: i}, err
		}
	}
	ctx.Logger().Info("probe.emit done", "events", in.Events)
	return EmitOut{Emitted: in.Events}, nil
}

// RoundtripIn is how many sequential GETs of URL to make.
type RoundtripIn struct {
	N   int    `json:"n"`
	URL string `json:"url"`
}

// RoundtripOut is how many were made.
type RoundtripOut struct {
	N int `json:"n"`
}

// roundtrip makes n buffered fetches one after the other: n round trips,
// for benchmarks.
func roundtrip(ctx *agent.Context, in RoundtripIn) (RoundtripOut, error) {
	for i := range in.N {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
		if err != nil {
			return RoundtripOut{N: i}, err
		}
		resp, err := ctx.Fetch(req)
		if err != nil {
			return RoundtripOut{N: i}, err
		}
		resp.Body.Close()
	}
	return RoundtripOut{N: in.N}, nil
}

// PolicyIn is one request of probe.policy; Method defaults to GET.
type PolicyIn struct {
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	// Stream sends it through ctx.Transport instead (no redirect followed)
	// and reads the body in reads of at most ReadMax bytes (default 7).
	Stream  bool `json:"stream,omitempty"`
	ReadMax int  `json:"read_max,omitempty"`
}

// PolicyOut is the response, its body read whole; or Denied with the
// *policy.DenyError's Reason and Rule; or Error, for any other failure.
// Neither is an agent error: the run answers 200 either way.
type PolicyOut struct {
	Status  int                 `json:"status"`
	Body    string              `json:"body"`
	Headers map[string][]string `json:"headers"`
	Denied  bool                `json:"denied"`
	Reason  string              `json:"reason"`
	Rule    string              `json:"rule"`
	Error   string              `json:"error"`
}

// policyProbe sends one request with ctx.Fetch, which follows redirects,
// each hop decided by the agent's policy: probe.policy's PolicyPolicy, or
// probe.report's ReportPolicy.
func policyProbe(ctx *agent.Context, in PolicyIn) (PolicyOut, error) {
	req, err := http.NewRequestWithContext(ctx, in.Method, in.URL, nil)
	if err != nil {
		return PolicyOut{Error: err.Error()}, nil
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	var resp *http.Response
	if in.Stream {
		resp, err = ctx.Transport().RoundTrip(req)
	} else {
		resp, err = ctx.Fetch(req)
	}
	var denied *policy.DenyError
	if errors.As(err, &denied) {
		return PolicyOut{Denied: true, Reason: string(denied.Decision.Reason), Rule: denied.Decision.Rule}, nil
	}
	if err != nil {
		return PolicyOut{Error: err.Error()}, nil
	}
	defer resp.Body.Close()
	var body []byte
	if in.Stream {
		chunk := make([]byte, cmp.Or(in.ReadMax, 7))
		for {
			n, err := resp.Body.Read(chunk)
			body = append(body, chunk[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return PolicyOut{Error: err.Error()}, nil
			}
		}
	} else if body, err = io.ReadAll(resp.Body); err != nil {
		return PolicyOut{Error: err.Error()}, nil
	}
	return PolicyOut{Status: resp.StatusCode, Body: string(body), Headers: resp.Header}, nil
}
