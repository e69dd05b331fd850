package local

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs a module instance's linear memory with its own
// mapping, outside the Go heap: the whole limit is reserved at once
// (address space only: a page takes memory when the module first touches
// it), so growing never copies, the host's garbage collector never sees
// it, and closing the instance gives it back to the system at once.
// Backed by the Go heap instead, every growth left a garbage copy and the
// collector's headroom doubled what the host held (docs/architecture.md,
// "Memory").
type linearMemory struct{ buf []byte }

// memoryAllocator returns the allocator for module instances' memories.
func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capBytes, maxBytes uint64) experimental.LinearMemory {
		b, err := syscall.Mmap(-1, 0, int(max(maxBytes, capBytes, 1<<16)), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return &heapMemory{}
		}
		return &linearMemory{buf: b}
	})
}

func (m *linearMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // beyond the limit: memory.grow fails in the module
	}
	return m.buf[:size]
}

func (m *linearMemory) Free() {
	if m.buf != nil {
		syscall.Munmap(m.buf)
		m.buf = nil
	}
}
