package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/damperdev/damper/policy"
)

const policyUsage = `Usage:
  damper policy check (--policy FILE | --preset NAME[:LEVEL]...) [--method M] --url U
                      [--body FILE] [--header K:V]... [--json]
        Decide one request and print the decision, the deciding rule and the
        canonical URL. Presets: anthropic, openai (LEVEL allow-read,
        allow-all, deny-all) and github (LEVEL read-only). Exit status: 0
        allowed, 1 denied, 2 bad input.
  damper policy help
        Show this text.
`

// policyCmd runs "damper policy ..." with the arguments after "policy".
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "damper policy: unknown command %q\n\n%s", args[0], policyUsage)
	return 2
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func policyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("damper policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	file := fs.String("policy", "", "policy JSON `file`")
	var presets, headers repeated
	fs.Var(&presets, "preset", "preset `NAME[:LEVEL]` (repeatable)")
	method := fs.String("method", "GET", "request method")
	rawURL := fs.String("url", "", "request URL")
	bodyFile := fs.String("body", "", "request body `file`")
	fs.Var(&headers, "header", "request header `K:V` (repeatable)")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "damper policy check: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if *rawURL == "" {
		return bad("--url is required")
	}
	if (*file == "") == (len(presets) == 0) {
		return bad("give either --policy or --preset")
	}

	p, err := loadPolicy(*file, presets)
	if err != nil {
		return bad("%v", err)
	}
	engine, err := policy.Compile(p)
	if err != nil {
		return bad("%v", err)
	}
	req := policy.Request{Method: *method, URL: *rawURL}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return bad("--header %q: want K:V", h)
		}
		req.Headers = append(req.Headers, policy.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	if *bodyFile != "" {
		if req.Body, err = os.ReadFile(*bodyFile); err != nil {
			return bad("reading the body: %v", err)
		}
	}

	d := engine.Evaluate(&req, nil)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return bad("%v", err)
		}
	} else {
		printDecision(stdout, &d)
	}
	if d.Allow {
		return 0
	}
	return 1
}

func loadPolicy(file string, presets []string) (policy.Policy, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return policy.Policy{}, err
		}
		return policy.Parse(data)
	}
	var services []*policy.ServiceBuilder
	for _, spec := range presets {
		s, err := policy.Preset(spec)
		if err != nil {
			return policy.Policy{}, err
		}
		services = append(services, s...)
	}
	return policy.New(services...)
}

func printDecision(w io.Writer, d *policy.Decision) {
	verdict := "deny"
	switch {
	case d.Report:
		verdict = "allow (report mode: would deny)"
	case d.Allow:
		verdict = "allow"
	}
	fmt.Fprintf(w, "%s\n", verdict)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-8s %s\n", k, v)
		}
	}
	row("reason", string(d.Reason))
	row("detail", d.Detail)
	row("service", d.Service)
	rule := d.Rule
	if rule == "" && (d.Reason == policy.ReasonAllowLevel || d.Reason == policy.ReasonDenyLevel) {
		rule = "none: the service's level decided"
	}
	row("rule", rule)
	row("counter", d.Counter)
	row("method", d.Method)
	row("url", d.URL)
	for i, h := range d.Headers {
		k := ""
		if i == 0 {
			k = "headers"
		}
		fmt.Fprintf(w, "  %-8s %s: %s\n", k, h.Name, h.Value)
	}
}
