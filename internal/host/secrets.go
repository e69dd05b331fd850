package host

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/placeholder"
	"github.com/damperdev/damper/internal/scrub"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// agentSecrets is what the host needs to send one agent's requests and
// hand back their answers: which origin owns which secret (the agent's
// policy with the target overrides applied), the values of its secrets,
// and the Scrubber that removes them. The zero value is an agent without
// a policy: no origin owns a secret, and there is nothing to scrub.
type agentSecrets struct {
	owners Owners
	values map[string]string // the policy's secrets that are set, by name
	scrub  *scrub.Scrubber
}

var noSecrets = &agentSecrets{owners: ownsNothing{}, scrub: scrub.New()}

type ownsNothing struct{}

func (ownsNothing) Owns(string, string) bool { return false }

// loadSecrets compiles the policy of every agent of m with targets applied
// and reads the values of the secrets it names (only those) with lookup,
// once: a secret that changes in the environment later is not seen.
// It logs each override once, and warns of one that names no service of
// any agent (a typo would otherwise go unnoticed).
//
// It also returns the origins the policies' services are at, with the
// overrides applied: the local host dials them whatever their addresses.
func loadSecrets(m wire.Manifest, targets map[string]string, lookup func(string) (string, bool), logger *slog.Logger) (map[string]*agentSecrets, []string, error) {
	names := make([]string, 0, len(targets))
	for name := range targets {
		names = append(names, name)
	}
	sort.Strings(names)
	used := map[string]bool{}
	out := map[string]*agentSecrets{}
	var origins []string
	for _, a := range m.Agents {
		if len(a.Policy) == 0 {
			out[a.Name] = noSecrets
			continue
		}
		var p policy.Policy
		if err := p.UnmarshalJSON(a.Policy); err != nil {
			return nil, nil, fmt.Errorf("agent %s: the manifest's policy: %w", a.Name, err)
		}
		for _, s := range p.Services {
			if t, ok := targets[s.Name]; ok {
				used[s.Name] = true
				if err := p.SetTarget(s.Name, t); err != nil {
					return nil, nil, fmt.Errorf("agent %s: %w", a.Name, err)
				}
			}
		}
		e, err := policy.Compile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("agent %s: invalid policy: %w", a.Name, err)
		}
		for _, s := range p.Services {
			origins = append(origins, s.Target)
		}
		as := &agentSecrets{owners: e, values: map[string]string{}}
		as.scrub = AgentScrubber(e, func(name string) (string, bool) {
			v, ok := lookup(name)
			if ok {
				as.values[name] = v
			}
			return v, ok
		})
		out[a.Name] = as
	}
	for _, name := range names {
		if used[name] {
			logger.Info("target override", "service", name, "target", targets[name])
		} else {
			logger.Warn("target override names no service of this module's agents", "service", name, "target", targets[name])
		}
	}
	return out, origins, nil
}

// AgentScrubber is the scrubber a host builds for an agent whose policy
// compiled to e: every secret the policy names that lookup finds, with the
// Basic users its credentials send it with.
func AgentScrubber(e *policy.Engine, lookup func(name string) (string, bool)) *scrub.Scrubber {
	var secrets []scrub.Secret
	for _, u := range e.Secrets() {
		if v, ok := lookup(u.Name); ok {
			secrets = append(secrets, scrub.Secret{Name: u.Name, Value: v, BasicUsers: u.BasicUsers})
		}
	}
	return scrub.New(secrets...)
}

// any reports whether the agent has a secret set: something to scrub.
func (s *agentSecrets) any() bool { return !s.scrub.Empty() }

func (s *agentSecrets) lookup(name string) (string, bool) {
	v, ok := s.values[name]
	return v, ok
}

// substitute fills in the placeholders of a's headers for the origin of
// a.URL, which must be canonical. A placeholder for a secret the origin
// does not own, or that is not set, is an error naming the secret, never
// holding a value.
func (s *agentSecrets) substitute(a *wire.FetchArgs) error {
	if len(a.Headers) == 0 {
		return nil
	}
	placeholders := false
	for _, h := range a.Headers {
		placeholders = placeholders || strings.Contains(h[1], "${")
	}
	if !placeholders {
		return nil
	}
	hs, err := Substitute(a.Headers, policy.Origin(a.URL), s.owners, s.lookup)
	if err != nil {
		return err
	}
	a.Headers = hs
	return nil
}

// Owners says which secrets an origin may receive. A *policy.Engine is
// one: an origin owns the secrets of the service it belongs to.
type Owners interface {
	// Owns reports whether a request to origin ("scheme://host[:port]",
	// canonical) may carry the secret name.
	Owns(origin, name string) bool
}

// ErrNotOwned is wrapped by Substitute's error when a header asks for a
// secret that the request's origin does not own.
var ErrNotOwned = errors.New("secret not owned by the origin")

// Substitute returns headers with every placeholder replaced by its
// secret, at send time. It refuses, with an error wrapping ErrNotOwned, a
// placeholder for a secret that origin (of the URL about to be sent) does
// not own, and fails on a secret lookup cannot find or a malformed
// placeholder. Its errors name secrets, never their values.
func Substitute(headers []wire.Header, origin string, owners Owners, lookup func(name string) (string, bool)) ([]wire.Header, error) {
	out := make([]wire.Header, len(headers))
	for i, h := range headers {
		var b strings.Builder
		last := 0
		err := placeholder.Parse(h[1], func(p placeholder.Placeholder) error {
			if !owners.Owns(origin, p.Name) {
				return fmt.Errorf("secret %s for %s: %w", p.Name, origin, ErrNotOwned)
			}
			val, ok := lookup(p.Name)
			if !ok {
				return fmt.Errorf("secret %s is not configured", p.Name)
			}
			b.WriteString(h[1][last:p.Start])
			if p.Basic {
				b.WriteString("Basic ")
				b.WriteString(base64.StdEncoding.EncodeToString([]byte(p.User + ":" + val)))
			} else {
				b.WriteString(val)
			}
			last = p.End
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("substitute header %s: %w", h[0], err)
		}
		b.WriteString(h[1][last:])
		v := b.String()
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return nil, fmt.Errorf("substitute header %s: a secret holds a control character", h[0])
		}
		out[i] = wire.Header{h[0], v}
	}
	return out, nil
}

// errScrubbed wraps an error whose message had secrets replaced.
type errScrubbed struct{ msg string }

func (e *errScrubbed) Error() string { return e.msg }

// scrubError returns err with s's secrets replaced in its message; nil
// stays nil. The chain is cut: a wrapped error could still print a value.
func (s *agentSecrets) scrubError(err error) error {
	if err == nil {
		return nil
	}
	var bad *badEffectError
	if errors.As(err, &bad) {
		return &badEffectError{s.scrub.String(bad.msg)}
	}
	return &errScrubbed{s.scrub.String(err.Error())}
}
