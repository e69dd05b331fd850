//go:build !wasip1

package abi

// Natively there is no linear memory for a host to read: addresses are
// numbers handed out in turn, and memoryAt reads through them, so the
// export bodies run natively exactly as a wasm host drives them.

var lastAddress uint32

func addressOf([]byte) uint32 {
	lastAddress += 8
	return lastAddress
}

// memoryAt is the n bytes at ptr, as a host reads or writes them: the
// input buffer, or the last output.
func memoryAt(ptr, n uint32) []byte {
	if input != nil && ptr == inputAt {
		return input[:n]
	}
	if ptr == last.at {
		return last.out[:n]
	}
	return nil
}
