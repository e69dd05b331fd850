// Package abi is the guest side of the module ABI (docs/abi.md): the
// damper_* exports a host calls. Agent code never imports it; runtime/agent
// does, so that every module that registers an agent has the exports.
//
// The exports exist only in a wasip1 build. Natively the same bodies run
// against a table that stands in for linear memory, so they are tested with
// plain go test, and agenttest drives the module in-process.
package abi

import (
	"context"
	"strconv"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// abiOverride, when set at link time, replaces wire.Version as the version
// the manifest names. It exists for the hosts' test that a module speaking
// another ABI is refused:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath \
//	  -ldflags "-X github.com/damperdev/damper/runtime/abi.abiOverride=99" ...
//
// A value that is not an integer makes the manifest name version 0, which
// no host speaks.
var abiOverride string

// version is the ABI version the manifest names.
func version() int {
	if abiOverride == "" {
		return wire.Version
	}
	v, err := strconv.Atoi(abiOverride)
	if err != nil {
		return 0
	}
	return v
}

// Perform issues an effect of any type from a run and waits for its
// result, decoded into value unless value is nil; a failure the host
// reports is an *EffectError. ctx is the run's *agent.Context.
//
// It exists for the probe agents (tests/agents) that hold hosts to the
// contract with effects no API issues, such as a type no host performs.
// Agent code uses runtime/agent, which issues every effect it needs.
func Perform(ctx context.Context, effect string, args, value any) error {
	return sched.Perform(ctx, effect, args, value)
}

// EffectError is an effect's failure as the host reported it: Type is a
// wire error type (unknown_effect, fetch_error, canceled, ...).
type EffectError = sched.EffectError
