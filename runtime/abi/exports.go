package abi

import (
	"fmt"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/guest"
)

// maxInput bounds damper_alloc: far above any input a host sends (a batch
// of results whose bodies are capped at 32 MiB each). A larger size gets
// 0, then bad_task, rather than an allocation that could exhaust memory.
const maxInput = 1 << 30

var (
	// input is the buffer damper_alloc handed out last, at inputAt. It
	// stays valid, and the host may pass input in it to any number of
	// export calls, until the next damper_alloc: a host reuses it while
	// its inputs fit, which saves an export call and an allocation per
	// round trip. An export only reads the buffer it handed out, so a
	// wrong pointer is a bad_task, never a trap.
	input   []byte
	inputAt uint32

	// last is the last export's output: it must stay where the host reads
	// it until the next export call.
	last struct {
		out []byte
		at  uint32
	}
)

// alloc is damper_alloc: a buffer of size bytes for the next inputs, or 0
// when size is beyond any input. It releases the buffer handed out before.
func alloc(size uint32) uint32 {
	if size > maxInput {
		return 0
	}
	input = make([]byte, max(size, 1)) // even an empty input needs an address of its own
	inputAt = addressOf(input)
	return inputAt
}

// take returns the input at ptr; false when ptr is not the buffer alloc
// handed out last, or n overruns it. The buffer stays the host's to reuse:
// nothing may keep a slice of the input past the export call (decoders
// copy what they keep).
func take(ptr, n uint32) ([]byte, bool) {
	if input == nil || ptr != inputAt || int(n) > len(input) {
		return nil, false
	}
	return input[:n], true
}

// call runs an export's body on the input at ptr.
func call(body func([]byte) []byte, ptr, n uint32) uint64 {
	in, ok := take(ptr, n)
	if !ok {
		return deliver(fmt.Appendf(nil, `{"task":"","done":true,"error":{"type":%q,"message":"no input of %d bytes at %d: pass a buffer from %s"}}`,
			wire.ErrBadTask, n, ptr, wire.ExportAlloc))
	}
	return deliver(body(in))
}

// deliver keeps out until the next export call and packs its address and
// length as the exports return them: ptr<<32 | len.
func deliver(out []byte) uint64 {
	last.out, last.at = out, addressOf(out)
	return uint64(last.at)<<32 | uint64(len(out))
}

func manifest() uint64            { return deliver(guest.Manifest(version())) }
func start(ptr, n uint32) uint64  { return call(guest.Start, ptr, n) }
func resume(ptr, n uint32) uint64 { return call(guest.Resume, ptr, n) }
func cancel(ptr, n uint32) uint64 { return call(guest.Cancel, ptr, n) }
