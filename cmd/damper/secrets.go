package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/damperdev/damper/local"
)

// policySecrets returns the names of the secrets the agents' policies
// name (never values: a manifest holds none), sorted, and for each the
// agents whose policy names it.
func policySecrets(m local.Manifest) ([]string, map[string][]string) {
	agents := map[string][]string{}
	for _, a := range m.Agents {
		if len(a.Policy) == 0 {
			continue
		}
		var p struct {
			Services []struct {
				Secrets []string `json:"secrets"`
			} `json:"services"`
		}
		if json.Unmarshal(a.Policy, &p) != nil {
			continue // the build compiled every policy; a host refuses a broken one
		}
		seen := map[string]bool{}
		for _, s := range p.Services {
			for _, n := range s.Secrets {
				if !seen[n] {
					seen[n] = true
					agents[n] = append(agents[n], a.Name)
				}
			}
		}
	}
	names := make([]string, 0, len(agents))
	for n := range agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, agents
}

// warnMissingSecrets prints a line for every secret the agents' policies
// name that isset does not report as set, saying where to put it. A run
// that needs it fails with "secret NAME is not configured"; this says so
// before the first run.
func warnMissingSecrets(w io.Writer, cmd string, m local.Manifest, isset func(string) bool, where func(name string) string) {
	names, agents := policySecrets(m)
	for _, n := range names {
		if !isset(n) {
			who := "agent " + agents[n][0]
			if len(agents[n]) > 1 {
				who = "agents " + strings.Join(agents[n], ", ")
			}
			fmt.Fprintf(w, "damper %s: secret %s is not set, so the requests of %s that need it fail: %s\n", cmd, n, who, where(n))
		}
	}
}
