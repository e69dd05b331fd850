package host

import (
	"fmt"
	"strings"

	"github.com/damperdev/damper/policy"
)

// ParseTargets reads target overrides as DAMPER_TARGETS spells them:
// "name=scheme://host[:port]" pairs separated by commas, such as
// "github=http://127.0.0.1:8081,anthropic=http://127.0.0.1:8082". Spaces
// around pairs are ignored; an empty spec is no override. A name given
// twice is an error, as one of them would be silently lost.
func ParseTargets(spec string) (map[string]string, error) {
	targets := map[string]string{}
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		if err := AddTarget(targets, pair); err != nil {
			return nil, err
		}
	}
	return targets, nil
}

// AddTarget adds one "name=scheme://host[:port]" override to targets,
// checking it (see WithTargets), and fails on a name targets already has.
func AddTarget(targets map[string]string, pair string) error {
	name, target, ok := strings.Cut(pair, "=")
	if !ok || name == "" || target == "" {
		return fmt.Errorf("target override %q: want name=scheme://host[:port]", pair)
	}
	if _, dup := targets[name]; dup {
		return fmt.Errorf("target override %q: service %s is overridden twice", pair, name)
	}
	canonical, err := CanonicalTarget(name, target)
	if err != nil {
		return err
	}
	targets[name] = canonical
	return nil
}

// CanonicalTarget checks one override the way the guest will apply it
// (policy.Policy.SetTarget) and returns its canonical form, so that a bad
// override fails the host's start, not every request.
func CanonicalTarget(name, target string) (string, error) {
	p := policy.Policy{Version: policy.Version, Services: []policy.Service{{Name: name, Target: "https://placeholder.invalid", Level: policy.DenyAll}}}
	if err := p.SetTarget(name, target); err != nil {
		return "", fmt.Errorf("target override %s=%s: %w", name, target, err)
	}
	if _, err := policy.Compile(p); err != nil { // the name's grammar
		return "", fmt.Errorf("target override %s=%s: %w", name, target, err)
	}
	return p.Services[0].Target, nil
}
