package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

const policyUsage = `Usage:
  damper policy check (--policy FILE | --preset NAME[:LEVEL]... | --agent NAME [--manifest FILE])
                      [--target NAME=URL]... [--method M] --url U
                      [--body FILE] [--header K:V]... [--json]
        Decide one request and print the decision, the deciding rule and the
        canonical URL. The policy is a JSON file, presets (anthropic, openai
        with LEVEL allow-read, allow-all or deny-all; github with LEVEL
        read-only), or the policy of agent NAME in a built manifest (default
        build/manifest.json, written by damper build). --target points a
        service at another origin as damper run and serve do (repeatable;
        adds to $DAMPER_TARGETS). Exit status: 0 allowed, 1 denied, 2 bad
        input.
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
	agentName := fs.String("agent", "", "check the policy of agent `NAME` in the manifest")
	manifestFile := fs.String("manifest", "", "the built `manifest` to read --agent from (default "+defaultManifest()+")")
	targets := targetFlag(fs)
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
	if *manifestFile != "" && *agentName == "" {
		return bad("--manifest needs --agent NAME: the agent whose policy to check")
	}
	sources := 0
	for _, given := range []bool{*file != "", len(presets) > 0, *agentName != ""} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return bad("give exactly one of --policy, --preset and --agent")
	}

	var p policy.Policy
	var err error
	if *agentName != "" {
		p, err = agentPolicy(*manifestFile, *agentName)
	} else {
		p, err = loadPolicy(*file, presets)
	}
	if err != nil {
		return bad("%v", err)
	}
	overrides, err := targets()
	if err != nil {
		return bad("%v", err)
	}
	if err := applyTargets(&p, overrides, stderr); err != nil {
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

func defaultManifest() string { return filepath.Join(filepath.Dir(defaultModule), "manifest.json") }

// agentPolicy reads the policy of agent name from the manifest damper build
// wrote (file; empty for the default).
func agentPolicy(file, name string) (policy.Policy, error) {
	if file == "" {
		file = defaultManifest()
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return policy.Policy{}, fmt.Errorf("manifest %s does not exist: run damper build first (it writes manifest.json beside the module), or name one with --manifest", file)
	}
	if err != nil {
		return policy.Policy{}, fmt.Errorf("reading the manifest: %w", err)
	}
	var m wire.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return policy.Policy{}, fmt.Errorf("manifest %s: %w", file, err)
	}
	names := make([]string, 0, len(m.Agents))
	for _, a := range m.Agents {
		if a.Name != name {
			names = append(names, a.Name)
			continue
		}
		if len(a.Policy) == 0 || string(a.Policy) == "null" {
			return policy.Policy{}, fmt.Errorf("agent %s in %s has no policy: it may send no request (give it one with agent.WithPolicy)", name, file)
		}
		var p policy.Policy
		if err := p.UnmarshalJSON(a.Policy); err != nil {
			return policy.Policy{}, fmt.Errorf("agent %s in %s: %w", name, file, err)
		}
		return p, nil
	}
	if len(names) == 0 {
		return policy.Policy{}, fmt.Errorf("agent %q is not in %s, which lists no agents", name, file)
	}
	return policy.Policy{}, fmt.Errorf("agent %q is not in %s; its agents: %s", name, file, strings.Join(names, ", "))
}

// applyTargets points the services of p that overrides names at their new
// targets, as the guest does before deciding a request; an override that
// names no service of p is ignored with a note, since $DAMPER_TARGETS may
// serve other agents.
func applyTargets(p *policy.Policy, overrides map[string]string, stderr io.Writer) error {
	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.ContainsFunc(p.Services, func(s policy.Service) bool { return s.Name == name }) {
			fmt.Fprintf(stderr, "damper policy check: target override %s=%s names no service of this policy; ignored\n", name, overrides[name])
			continue
		}
		if err := p.SetTarget(name, overrides[name]); err != nil {
			return err
		}
	}
	return nil
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
