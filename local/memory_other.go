//go:build !linux

package local

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator returns the allocator for module instances' memories:
// the Go heap, as wazero's own (see memory_linux.go for why Linux maps
// them itself).
func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capBytes, _ uint64) experimental.LinearMemory {
		return &heapMemory{buf: make([]byte, 0, capBytes)}
	})
}
