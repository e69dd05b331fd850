package agents

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
)

// ToolPolicy is probe.tool's, the policy of a naive agent whose model
// chooses what to fetch: service "vault" owns the secret RT_TOKEN (a Bearer
// token, and HTTP Basic with the user rt-user in X-Basic), allows every
// request, and GET /limited twice per agent instance (rule "vault-limited");
// service "open" owns no secret and allows every request, so an origin the
// model may point it at (a hostile one) is reachable. X-Probe is allowed
// on both. The targets are placeholders the tests override.
var ToolPolicy = must(policy.New(
	policy.NewService("vault", "http://127.0.0.1:13").
		Level(policy.AllowAll).
		AddHeaders("X-Probe").
		Credential("Authorization", "Bearer ${secret:RT_TOKEN}").
		Credential("X-Basic", "${basic:rt-user:RT_TOKEN}").
		Allow(policy.On("/limited", "GET").Limit(2).ID("vault-limited")),
	policy.NewService("open", "http://127.0.0.1:14").
		Level(policy.AllowAll).
		AddHeaders("X-Probe"),
))

// ToolReportPolicy is ToolPolicy in report mode: what enforcement would deny
// is sent anyway (and reported), so the host's own checks are all that
// stands between the model and an address.
var ToolReportPolicy = func() policy.Policy {
	p := ToolPolicy
	p.Mode = policy.Report
	return p
}()

func init() {
	agent.Register("probe.tool", tool, agent.WithPolicy(ToolPolicy))
	agent.Register("probe.tool.report", tool, agent.WithPolicy(ToolReportPolicy))
}

// ToolIn is what a prompt-injected model asks a naive fetch tool for:
// requests sent concurrently, each exactly as given.
type ToolIn struct {
	Requests []ToolRequest `json:"requests"`
}

// ToolRequest is one request as the model wrote it. Headers may repeat a
// name. Follow sends it with Context.Fetch, which follows redirects;
// otherwise it goes through Context.Transport, one hop, its body read in
// reads of at most Max bytes (default 4096), each read recorded.
type ToolRequest struct {
	Method  string      `json:"method,omitempty"`
	URL     string      `json:"url"`
	Headers [][2]string `json:"headers,omitempty"`
	Body    string      `json:"body,omitempty"`
	Follow  bool        `json:"follow,omitempty"`
	Max     int         `json:"max,omitempty"`
}

// ToolOut has one result per request, in order.
type ToolOut struct {
	Results []ToolResult `json:"results"`
}

// ToolResult is everything the tool hands back to the model: the status,
// the headers, the body, the chunks the body came in, or the denial or
// error. A secret anywhere in it has reached the model.
type ToolResult struct {
	Status  int         `json:"status,omitempty"`
	Headers [][2]string `json:"headers,omitempty"`
	Body    string      `json:"body,omitempty"`
	Reads   []string    `json:"reads,omitempty"`
	Denied  bool        `json:"denied,omitempty"`
	Reason  string      `json:"reason,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// tool sends every request of in at once (one batch), as a model's parallel
// tool calls would, and echoes whatever comes back.
func tool(ctx *agent.Context, in ToolIn) (ToolOut, error) {
	out := ToolOut{Results: make([]ToolResult, len(in.Requests))}
	g := ctx.Group()
	for i, r := range in.Requests {
		g.Go(func() error {
			out.Results[i] = toolRequest(ctx, r)
			return nil
		})
	}
	return out, g.Wait()
}

func toolRequest(ctx *agent.Context, r ToolRequest) (res ToolResult) {
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return ToolResult{Error: err.Error()}
	}
	for _, h := range r.Headers {
		// Straight into the map: Header.Add would canonicalize the name
		// and the model's spelling is part of the attack.
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	var resp *http.Response
	if r.Follow {
		resp, err = ctx.Fetch(req)
	} else {
		resp, err = ctx.Transport().RoundTrip(req)
	}
	var denied *policy.DenyError
	if errors.As(err, &denied) {
		return ToolResult{Denied: true, Reason: string(denied.Decision.Reason), Error: err.Error()}
	}
	if err != nil {
		return ToolResult{Error: err.Error()}
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	for name, vs := range resp.Header {
		for _, v := range vs {
			res.Headers = append(res.Headers, [2]string{name, v})
		}
	}
	size := r.Max
	if size <= 0 {
		size = 4096
	}
	buf := make([]byte, size)
	var all strings.Builder
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			res.Reads = append(res.Reads, string(buf[:n]))
			all.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			res.Error = err.Error()
			break
		}
	}
	res.Body = all.String()
	return res
}
