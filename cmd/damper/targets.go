package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/damperdev/damper/local"
)

// targetFlag adds the repeatable --target flag to fs and returns a
// function that reads the overrides: $DAMPER_TARGETS
// ("name=url,name=url"), then every --target name=URL, which wins over
// the environment for its service. Run and serve take the same overrides,
// which point services of the agents' policies at other origins (tests
// point presets at loopback fakes) without changing the module.
func targetFlag(fs *flag.FlagSet) func() (map[string]string, error) {
	var flags repeated
	fs.Var(&flags, "target", "point a service of the agents' policies at another origin, `name=URL` (repeatable; adds to $DAMPER_TARGETS)")
	return func() (map[string]string, error) {
		targets, err := local.ParseTargets(os.Getenv("DAMPER_TARGETS"))
		if err != nil {
			return nil, fmt.Errorf("DAMPER_TARGETS: %w", err)
		}
		given := map[string]string{}
		for _, pair := range flags {
			if err := local.AddTarget(given, pair); err != nil {
				return nil, fmt.Errorf("--target: %w", err)
			}
		}
		for name, t := range given {
			targets[name] = t
		}
		return targets, nil
	}
}
