package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// agentSecrets is what the host needs to send one agent's requests and
// hand back their answers: which origin owns which secret (the agent's
// policy with the target overrides applied), the values of its secrets,
// and the Scrubber that removes them. The zero value is an agent without
// a policy: no origin owns a secret, and there is nothing to scrub.
type agentSecrets struct {
	owners policy.Owners
	values map[string]string // the policy's secrets that are set, by name
	scrub  *policy.Scrubber
}

var noSecrets = &agentSecrets{owners: ownsNothing{}, scrub: policy.NewScrubber()}

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
		owned := map[string]bool{}
		for _, s := range p.Services {
			for _, n := range s.Secrets {
				owned[n] = true
			}
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
		for n := range owned {
			if v, ok := lookup(n); ok {
				as.values[n] = v
			}
		}
		as.scrub = e.Scrubber(as.lookup)
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

// any reports whether the agent has a secret set: something to scrub.
func (s *agentSecrets) any() bool { return s.scrub.MaxLen() > 0 }

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
	hs := make([]policy.Header, len(a.Headers))
	placeholders := false
	for i, h := range a.Headers {
		hs[i] = policy.Header{Name: h[0], Value: h[1]}
		placeholders = placeholders || strings.Contains(h[1], "${")
	}
	if !placeholders {
		return nil
	}
	hs, err := policy.Substitute(hs, policy.Origin(a.URL), s.owners, s.lookup)
	if err != nil {
		return err
	}
	headers := make([]wire.Header, len(hs))
	for i, h := range hs {
		headers[i] = wire.Header{h.Name, h.Value}
	}
	a.Headers = headers
	return nil
}

// scrubReader is a response body with s's secrets replaced, the same text
// scrubbing the whole body gives, read by read.
//
// It holds back raw bytes so that a value cut by a read is found whole
// once the rest arrives: it hands out the scrubbed text of a prefix that
// no value (no text the Scrubber looks for) straddles, and keeps the rest,
// at least MaxLen()-1 bytes, for the next read. A value that ends in the
// prefix cannot grow into a longer one (that would fit in what is held),
// so the prefix's replacements are final. Whether a value straddles a cut
// is seen by comparing the scrubbed whole with the scrubbed halves; the
// Scrubber does not say where it replaced.
type scrubReader struct {
	body  io.ReadCloser
	s     *policy.Scrubber
	keep  int
	held  []byte // read from body, not yet handed out (raw, but see maxHeld)
	ready []byte // scrubbed, to hand out
	err   error  // from body, once it has ended or failed
}

// maxHeld bounds what scrubReader holds while every cut it tries is
// straddled (a body of back-to-back secrets), so that such a body costs
// linear time: it then hands out the scrubbed text and holds its tail,
// scrubbed. A value cut there is still found, but one value that is a
// prefix of another may win over it.
const maxHeld = 64 << 10

func newScrubReader(body io.ReadCloser, s *policy.Scrubber) io.ReadCloser {
	if s.MaxLen() == 0 { // no secret to find
		return body
	}
	return &scrubReader{body: body, s: s, keep: s.MaxLen() - 1}
}

func (r *scrubReader) Read(p []byte) (int, error) {
	for len(r.ready) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		chunk := make([]byte, max(len(p), 4096))
		n, err := r.body.Read(chunk)
		r.held = append(r.held, chunk[:n]...)
		if err != nil {
			// The end (or a failure): nothing more can complete a value.
			r.ready, r.held, r.err = r.s.Bytes(r.held), nil, err
			break
		}
		if n > 0 {
			r.release()
		}
	}
	n := copy(p, r.ready)
	r.ready = r.ready[n:]
	if len(r.ready) == 0 && r.err != nil {
		return n, r.err
	}
	return n, nil
}

// release moves the scrubbed text of a prefix of held that no value
// straddles to ready, trying the cut that holds keep bytes back, then one
// a value's length before it (past any value that straddles the first).
func (r *scrubReader) release() {
	whole := r.s.Bytes(r.held)
	for _, cut := range []int{len(r.held) - r.keep, len(r.held) - 2*r.keep - 1} {
		if cut <= 0 {
			return // too little to hand out any yet
		}
		head, tail := r.s.Bytes(r.held[:cut]), r.s.Bytes(r.held[cut:])
		if len(head)+len(tail) == len(whole) && bytes.HasPrefix(whole, head) && bytes.HasSuffix(whole, tail) {
			r.ready = head
			r.held = append(r.held[:0], r.held[cut:]...)
			return
		}
	}
	if len(r.held) > maxHeld {
		cut := len(whole) - r.keep
		r.ready = whole[:cut]
		r.held = append(r.held[:0], whole[cut:]...)
	}
}

func (r *scrubReader) Close() error { return r.body.Close() }

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
