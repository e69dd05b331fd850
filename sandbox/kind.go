package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/damperdev/damper/runtime/instance"
)

// Kind names a kind of sandbox.
type Kind string

// The kinds damper offers.
const (
	KindEmpty     Kind = "empty"
	KindLocal     Kind = "local"
	KindContainer Kind = "container"
)

// importPaths name the package that links each of damper's kinds, for the
// error of an Open whose kind is not linked.
var importPaths = map[Kind]string{
	KindEmpty:     "github.com/damperdev/damper/sandbox/empty",
	KindLocal:     "github.com/damperdev/damper/sandbox/local",
	KindContainer: "github.com/damperdev/damper/sandbox/container",
}

// Spec says which sandbox an agent wants. It is data: the host may
// replace its Kind for a run.
type Spec struct {
	Kind Kind `json:"kind"`

	// Limits bound what the sandbox holds; a zero field takes the kind's
	// default.
	Limits Limits `json:"limits,omitzero"`
}

// Limits bound a sandbox's files. The empty kind keeps its files in the
// module's memory and the agent instance's storage, so its defaults are
// small (see package sandbox/empty); an operation that would pass a limit
// fails with ErrTooLarge and changes nothing.
type Limits struct {
	// MaxFileSize is the largest file, in bytes.
	MaxFileSize int64 `json:"max_file_size,omitempty"`

	// MaxTotalSize is the most bytes all files may hold together.
	MaxTotalSize int64 `json:"max_total_size,omitempty"`

	// MaxFiles is the most files and directories the sandbox may hold.
	MaxFiles int `json:"max_files,omitempty"`
}

// Empty is the empty kind: an in-memory file system and an in-process
// shell inside the module, starting with an empty working directory and
// kept in the agent instance's storage. A module links it by importing
// package github.com/damperdev/damper/sandbox/empty.
func Empty() Spec { return Spec{Kind: KindEmpty} }

// Local is the local kind: the host's own file system and shell, in the
// directory the local host was started in. It is not a security boundary:
// use it only where the machine isolates already (a CI runner). Workers do
// not offer it.
func Local() Spec { return Spec{Kind: KindLocal} }

// Container is the container kind: a container of the agent instance
// (Cloudflare Containers on Workers, a child process locally), whose
// outbound HTTP passes the agent's policy.
func Container() Spec { return Spec{Kind: KindContainer} }

// Opener opens the sandbox of ctx's agent instance for spec, whose Kind is
// the opener's. Kinds register one with RegisterKind.
type Opener func(ctx context.Context, spec Spec) (Sandbox, error)

var (
	kindsMu sync.RWMutex
	kinds   = map[Kind]Opener{}
)

// RegisterKind makes open the opener of kind. A kind's package calls it
// from its init, so that importing the package links the kind. It panics
// when kind has an opener already, or open is nil.
func RegisterKind(kind Kind, open Opener) {
	if open == nil {
		panic(fmt.Sprintf("sandbox: nil opener for kind %q", kind))
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[kind]; dup {
		panic(fmt.Sprintf("sandbox: kind %q registered twice", kind))
	}
	kinds[kind] = open
}

// Open opens the sandbox of ctx's agent instance: spec's kind, unless the
// host overrides it for this run. Every run of an agent instance opens the
// same sandbox (the same files), whichever kind's, and opening is cheap
// after the first time in a module instance, so open it where it is
// needed.
//
// A kind this module does not link, or this host does not offer, is an
// error wrapping ErrUnavailable that names the package to import.
func Open(ctx context.Context, spec Spec) (Sandbox, error) {
	spec.Kind = chooseKind(spec.Kind, hostOverride(ctx))
	kindsMu.RLock()
	open := kinds[spec.Kind]
	kindsMu.RUnlock()
	if open == nil {
		if path, ok := importPaths[spec.Kind]; ok {
			return nil, fmt.Errorf("sandbox: open %s: %w: this module does not link it (import %s)", spec.Kind, ErrUnavailable, path)
		}
		return nil, fmt.Errorf("sandbox: open %q: %w: no such kind (want %s, %s or %s)", spec.Kind, ErrUnavailable, KindEmpty, KindLocal, KindContainer)
	}
	sb, err := open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open %s: %w", spec.Kind, err)
	}
	return observed{sb}, nil
}

// chooseKind is the kind a run gets: the host's override when there is one.
func chooseKind(chosen, override Kind) Kind {
	if override != "" {
		return override
	}
	if chosen == "" {
		return KindEmpty
	}
	return chosen
}

// hostOverride is the kind the host asks for this run, or "" when the agent's
// own choice stands (damper run --sandbox, DAMPER_SANDBOX on either host).
func hostOverride(ctx context.Context) Kind { return Kind(instance.HostSandbox(ctx)) }
