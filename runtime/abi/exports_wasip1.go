//go:build wasip1

//lint:file-ignore U1000 the host calls the exports; staticcheck does not read //go:wasmexport

package abi

import "unsafe"

// The export names are wire.ExportAlloc, wire.ExportManifest, ... (a
// directive cannot name a constant; a test checks they match).

//go:wasmexport damper_alloc
func damperAlloc(size uint32) uint32 { return alloc(size) }

//go:wasmexport damper_manifest
func damperManifest() uint64 { return manifest() }

//go:wasmexport damper_start
func damperStart(ptr, n uint32) uint64 { return start(ptr, n) }

//go:wasmexport damper_resume
func damperResume(ptr, n uint32) uint64 { return resume(ptr, n) }

//go:wasmexport damper_cancel
func damperCancel(ptr, n uint32) uint64 { return cancel(ptr, n) }

// addressOf is where b starts in linear memory. Go's collector does not
// move objects, so the address holds while b is referenced.
func addressOf(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
