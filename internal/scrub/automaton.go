package scrub

import "slices"

// family is one set of patterns (the texts a matcher looks for in a
// decoded stream) and the Aho-Corasick automaton that finds them, as a
// dense table over byte classes: one lookup per byte, whatever the input.
type family struct {
	classOf [256]uint16 // 0: a byte no pattern holds
	nc      int32       // number of classes
	trans   []int32     // trans[state*nc+class]
	depth   []int32
	fail    []int32
	best    []int32  // the longest pattern that ends the state's text, or -1
	term    []int32  // the pattern the state's text is, or -1
	kids    [][]byte // the bytes that extend the state's text in the trie
	pats    []pattern
	maxLen  int
}

type pattern struct {
	n   int // length in bytes
	sec int // the secret it belongs to
}

// newFamily compiles texts, texts[i] belonging to secret secs[i]. A text
// given twice keeps the first secret; empty texts are skipped.
func newFamily(texts [][]byte, secs []int) *family {
	f := &family{}
	next := []map[byte]int32{{}}
	term := []int32{-1}
	depth := []int32{0}
	var used [256]bool
	for i, t := range texts {
		if len(t) == 0 {
			continue
		}
		s := int32(0)
		for _, b := range t {
			used[b] = true
			nx, ok := next[s][b]
			if !ok {
				nx = int32(len(next))
				next = append(next, map[byte]int32{})
				term = append(term, -1)
				depth = append(depth, depth[s]+1)
				next[s][b] = nx
			}
			s = nx
		}
		if term[s] < 0 {
			term[s] = int32(len(f.pats))
			f.pats = append(f.pats, pattern{n: len(t), sec: secs[i]})
			f.maxLen = max(f.maxLen, len(t))
		}
	}
	f.nc = 1
	for b := range 256 {
		if used[b] {
			f.classOf[b] = uint16(f.nc)
			f.nc++
		}
	}
	n := int32(len(next))
	f.trans = make([]int32, n*f.nc)
	f.fail = make([]int32, n)
	f.best = make([]int32, n)
	f.term = term
	f.depth = depth
	f.kids = make([][]byte, n)
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		kids := make([]byte, 0, len(next[s]))
		for b := range next[s] {
			kids = append(kids, b)
		}
		slices.Sort(kids)
		f.kids[s] = kids
		row := f.trans[s*f.nc : (s+1)*f.nc]
		if s != 0 {
			copy(row, f.trans[f.fail[s]*f.nc:(f.fail[s]+1)*f.nc])
		}
		for _, b := range kids {
			c := next[s][b]
			if s == 0 {
				f.fail[c] = 0
			} else {
				f.fail[c] = f.trans[f.fail[s]*f.nc+int32(f.classOf[b])]
			}
			row[f.classOf[b]] = c
			queue = append(queue, c)
		}
		if term[s] >= 0 {
			f.best[s] = term[s]
		} else if s == 0 {
			f.best[s] = -1
		} else {
			f.best[s] = f.best[f.fail[s]]
		}
	}
	return f
}

// step is the state after s reads b.
func (f *family) step(s int32, b byte) int32 {
	return f.trans[s*f.nc+int32(f.classOf[b])]
}

// liveDepth is how many of the bytes read so far a match may still begin
// with, in state s with nb more bits pb of the next byte known (nb < 8):
// the depth of the deepest state on s's fail chain that some pattern
// continues in a way those bits allow. It is 0 when only the next byte may
// begin one, and -1 when no match can use any byte read.
func (f *family) liveDepth(s int32, pb uint32, nb uint) int {
	for q := s; ; q = f.fail[q] {
		if q == 0 && nb == 0 {
			return -1
		}
		for _, c := range f.kids[q] {
			if nb == 0 || uint32(c)>>(8-nb) == pb {
				return int(f.depth[q])
			}
		}
		if q == 0 {
			return -1
		}
	}
}
