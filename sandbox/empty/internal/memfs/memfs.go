// Package memfs is the empty sandbox's file system: a tree of files and
// directories in memory, held to size limits, that records which paths
// changed so that its owner writes back only those.
//
// Paths are io/fs paths (fs.ValidPath: slash-separated, no leading slash,
// no "." or ".." elements, "." for the root). Errors are *fs.PathError
// values carrying the path they were given; callers that resolved it from
// a user's name put that name back with Relabel.
package memfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/sandbox"
)

// ErrNotEmpty is removing, or renaming over, a directory that has
// entries. It is also fs.ErrExist, as POSIX allows rename(2) to say.
var ErrNotEmpty error = notEmpty{}

type notEmpty struct{}

func (notEmpty) Error() string        { return "directory not empty" }
func (notEmpty) Is(target error) bool { return target == fs.ErrExist }

// Limits bound what an FS holds; zero fields are unlimited.
type Limits struct {
	MaxFileSize  int64
	MaxTotalSize int64
	MaxFiles     int
}

// Mode bits new files and directories get.
const (
	FileMode fs.FileMode = 0o644
	DirMode  fs.FileMode = 0o755
)

// FS is a file system in memory. It is safe for concurrent use.
type FS struct {
	mu      sync.Mutex
	root    *node
	limits  Limits
	size    int64 // bytes of all files
	count   int   // files and directories, the root not counted
	changed map[string]struct{}
	now     func() time.Time
}

type node struct {
	dir      bool
	mode     fs.FileMode // permission bits only
	mtime    time.Time
	data     []byte // never written in place past len: readers may hold it
	children map[string]*node
}

// New returns an empty FS held to limits.
func New(limits Limits) *FS {
	f := &FS{limits: limits, changed: map[string]struct{}{}, now: time.Now}
	f.root = &node{dir: true, mode: DirMode, mtime: f.now(), children: map[string]*node{}}
	return f
}

// Limits returns the limits f holds to.
func (f *FS) Limits() Limits {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limits
}

// SetLimits changes the limits f holds to from now on; what f holds
// already stays.
func (f *FS) SetLimits(l Limits) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = l
}

// Usage returns the bytes all files hold and how many files and
// directories there are.
func (f *FS) Usage() (size int64, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size, f.count
}

func pathErr(op, p string, err error) error { return &fs.PathError{Op: op, Path: p, Err: err} }

// Relabel replaces the path of a *fs.PathError with name, the name the
// caller was given, and returns other errors as they are.
func Relabel(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// walk returns the node at p, or an error saying which element is missing
// or not a directory. Call with f.mu held.
func (f *FS) walk(op, p string) (*node, error) {
	if !fs.ValidPath(p) {
		return nil, pathErr(op, p, fs.ErrInvalid)
	}
	n := f.root
	if p == "." {
		return n, nil
	}
	for elem := range strings.SplitSeq(p, "/") {
		if !n.dir {
			return nil, pathErr(op, p, sandbox.ErrNotDir)
		}
		c, ok := n.children[elem]
		if !ok {
			return nil, pathErr(op, p, fs.ErrNotExist)
		}
		n = c
	}
	return n, nil
}

// parent returns the directory that holds p and p's last element.
func (f *FS) parent(op, p string) (*node, string, error) {
	if !fs.ValidPath(p) {
		return nil, "", pathErr(op, p, fs.ErrInvalid)
	}
	if p == "." {
		return nil, "", pathErr(op, p, fs.ErrInvalid) // the root has no parent
	}
	dir, name := path.Split(p)
	d, err := f.walk(op, cleanDir(dir))
	if err != nil {
		return nil, "", pathErr(op, p, err.(*fs.PathError).Err)
	}
	if !d.dir {
		return nil, "", pathErr(op, p, sandbox.ErrNotDir)
	}
	return d, name, nil
}

func cleanDir(dir string) string {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return "."
	}
	return dir
}

func (f *FS) mark(p string) { f.changed[p] = struct{}{} }

// markTree marks p and everything below n, which is at p.
func (f *FS) markTree(p string, n *node) {
	f.mark(p)
	for name, c := range n.children {
		f.markTree(path.Join(p, name), c)
	}
}

// Info describes a file or directory. It implements fs.FileInfo and
// fs.DirEntry.
type Info struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i Info) Name() string               { return i.name }
func (i Info) Size() int64                { return i.size }
func (i Info) Mode() fs.FileMode          { return i.mode }
func (i Info) ModTime() time.Time         { return i.mtime }
func (i Info) IsDir() bool                { return i.mode.IsDir() }
func (i Info) Sys() any                   { return nil }
func (i Info) Type() fs.FileMode          { return i.mode.Type() }
func (i Info) Info() (fs.FileInfo, error) { return i, nil }

// DeviceInfo describes a character device such as /dev/null.
func DeviceInfo(name string) Info {
	return Info{name: name, mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}
}

func info(name string, n *node) Info {
	i := Info{name: name, size: int64(len(n.data)), mode: n.mode, mtime: n.mtime}
	if n.dir {
		i.mode |= fs.ModeDir
		i.size = 0
	}
	return i
}

// Stat describes p.
func (f *FS) Stat(p string) (Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("stat", p)
	if err != nil {
		return Info{}, err
	}
	return info(path.Base(p), n), nil
}

// ReadFile returns the content of the file p. The slice is f's own: do not
// change it (f never writes into it either).
func (f *FS) ReadFile(p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("open", p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, pathErr("read", p, sandbox.ErrIsDir)
	}
	return n.data, nil
}

// ReadDir returns the entries of the directory p, sorted by name.
func (f *FS) ReadDir(p string) ([]Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("open", p)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, pathErr("readdir", p, sandbox.ErrNotDir)
	}
	// Sorting the names, not the entries, reuses the string sort the module
	// links anyway; a sort of Info values was 19 KB of wasm of its own.
	names := slices.Sorted(maps.Keys(n.children))
	out := make([]Info, len(names))
	for i, name := range names {
		out[i] = info(name, n.children[name])
	}
	return out, nil
}

// checkSize refuses a file of newSize bytes replacing one of oldSize.
func (f *FS) checkSize(op, p string, oldSize, newSize int64) error {
	if f.limits.MaxFileSize > 0 && newSize > f.limits.MaxFileSize {
		return pathErr(op, p, fmt.Errorf("%w: the file would hold %d bytes, over the sandbox's limit of %d per file", sandbox.ErrTooLarge, newSize, f.limits.MaxFileSize))
	}
	if total := f.size - oldSize + newSize; f.limits.MaxTotalSize > 0 && newSize > oldSize && total > f.limits.MaxTotalSize {
		return pathErr(op, p, fmt.Errorf("%w: the sandbox would hold %d bytes, over its limit of %d", sandbox.ErrTooLarge, total, f.limits.MaxTotalSize))
	}
	return nil
}

func (f *FS) checkCount(op, p string, more int) error {
	if f.limits.MaxFiles > 0 && f.count+more > f.limits.MaxFiles {
		return pathErr(op, p, fmt.Errorf("%w: the sandbox would hold %d files and directories, over its limit of %d", sandbox.ErrTooLarge, f.count+more, f.limits.MaxFiles))
	}
	return nil
}

// WriteFile replaces the content of the file p with a copy of data,
// creating it (mode FileMode) when p's parent directory exists.
func (f *FS) WriteFile(p string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.writeLocked("open", p, data, false)
	return err
}

// WriteFileAll is WriteFile creating p's missing parent directories, all
// or nothing: when a limit refuses the file, no directory is created.
func (f *FS) WriteFileAll(p string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !fs.ValidPath(p) || p == "." {
		return pathErr("open", p, fs.ErrInvalid)
	}
	elems := strings.Split(p, "/")
	n := f.root
	missing := 0
	for i, elem := range elems[:len(elems)-1] {
		c, ok := n.children[elem]
		if !ok {
			missing = len(elems) - 1 - i
			break
		}
		if !c.dir {
			return pathErr("open", p, sandbox.ErrNotDir)
		}
		n = c
	}
	if missing > 0 {
		if err := f.checkSize("write", p, 0, int64(len(data))); err != nil {
			return err
		}
		if err := f.checkCount("open", p, missing+1); err != nil {
			return err
		}
		n = f.root
		for i, elem := range elems[:len(elems)-1] {
			c, ok := n.children[elem]
			if !ok {
				c = &node{dir: true, mode: DirMode, mtime: f.now(), children: map[string]*node{}}
				n.children[elem] = c
				f.count++
				f.mark(strings.Join(elems[:i+1], "/"))
			}
			n = c
		}
	}
	_, err := f.writeLocked("open", p, data, false)
	return err
}

// writeLocked writes data to p (appending with app) and returns the file.
func (f *FS) writeLocked(op, p string, data []byte, app bool) (*node, error) {
	d, name, err := f.parent(op, p)
	if err != nil {
		return nil, err
	}
	n, ok := d.children[name]
	if ok && n.dir {
		return nil, pathErr(op, p, sandbox.ErrIsDir)
	}
	var old int64
	if ok {
		old = int64(len(n.data))
		if !app && bytes.Equal(n.data, data) {
			// The same bytes again (sed -i that changed nothing): not a
			// change worth storing.
			return n, nil
		}
	}
	size := int64(len(data))
	if app {
		size += old
	}
	if err := f.checkSize("write", p, old, size); err != nil {
		return nil, err
	}
	if !ok {
		if err := f.checkCount(op, p, 1); err != nil {
			return nil, err
		}
		n = &node{mode: FileMode}
		d.children[name] = n
		f.count++
	}
	switch {
	case app && len(data) > 0:
		n.data = append(n.data, data...)
	case !app:
		n.data = append([]byte(nil), data...)
	}
	f.size += size - old
	n.mtime = f.now()
	f.mark(p)
	return n, nil
}

// Writer writes to one file, as a shell redirection does.
type Writer struct {
	f *FS
	p string
	n *node
}

// Create opens the file p for writing: creating it when p's parent exists,
// emptying it unless app.
func (f *FS) Create(p string, app bool) (*Writer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.writeLocked("open", p, nil, app)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, p: p, n: n}, nil
}

// Write appends b to the file. When the file was removed or replaced
// since Create, the bytes go nowhere, as with a file unlinked while open.
func (w *Writer) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, err := f.walk("write", w.p); err != nil || n != w.n {
		return len(b), nil
	}
	if _, err := f.writeLocked("write", w.p, b, true); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Mkdir creates the directory p in an existing parent.
func (f *FS) Mkdir(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, name, err := f.parent("mkdir", p)
	if err != nil {
		if p == "." {
			return pathErr("mkdir", p, fs.ErrExist)
		}
		return err
	}
	if _, ok := d.children[name]; ok {
		return pathErr("mkdir", p, fs.ErrExist)
	}
	if err := f.checkCount("mkdir", p, 1); err != nil {
		return err
	}
	d.children[name] = &node{dir: true, mode: DirMode, mtime: f.now(), children: map[string]*node{}}
	f.count++
	f.mark(p)
	return nil
}

// MkdirAll creates the directory p and its missing parents; p may exist
// as a directory.
func (f *FS) MkdirAll(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !fs.ValidPath(p) {
		return pathErr("mkdir", p, fs.ErrInvalid)
	}
	if p == "." {
		return nil
	}
	elems := strings.Split(p, "/")
	missing := 0
	n := f.root
	for i, elem := range elems {
		c, ok := n.children[elem]
		if !ok {
			missing = len(elems) - i
			break
		}
		if !c.dir {
			return pathErr("mkdir", p, sandbox.ErrNotDir)
		}
		n = c
	}
	if missing == 0 {
		return nil
	}
	if err := f.checkCount("mkdir", p, missing); err != nil {
		return err
	}
	n = f.root
	for i, elem := range elems {
		c, ok := n.children[elem]
		if !ok {
			c = &node{dir: true, mode: DirMode, mtime: f.now(), children: map[string]*node{}}
			n.children[elem] = c
			f.count++
			f.mark(strings.Join(elems[:i+1], "/"))
		}
		n = c
	}
	return nil
}

// Remove removes the file or empty directory p.
func (f *FS) Remove(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, name, err := f.parent("remove", p)
	if err != nil {
		return err
	}
	n, ok := d.children[name]
	if !ok {
		return pathErr("remove", p, fs.ErrNotExist)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", p, ErrNotEmpty)
	}
	f.detach(d, name, p, n)
	return nil
}

// RemoveAll removes p and everything below it; a missing p is not an
// error. The root cannot be removed.
func (f *FS) RemoveAll(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == "." {
		return pathErr("remove", p, fs.ErrInvalid)
	}
	d, name, err := f.parent("remove", p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing there to remove
		}
		return err
	}
	n, ok := d.children[name]
	if !ok {
		return nil
	}
	f.detach(d, name, p, n)
	return nil
}

// detach unlinks n (at p, name in d) and accounts for its whole tree.
func (f *FS) detach(d *node, name, p string, n *node) {
	delete(d.children, name)
	f.markTree(p, n)
	f.forget(n)
}

func (f *FS) forget(n *node) {
	f.count--
	f.size -= int64(len(n.data))
	for _, c := range n.children {
		f.forget(c)
	}
}

func (f *FS) adopt(n *node) {
	f.count++
	f.size += int64(len(n.data))
	for _, c := range n.children {
		f.adopt(c)
	}
}

// Rename moves oldp to newp, replacing a file, or an empty directory when
// oldp is one, at newp.
func (f *FS) Rename(oldp, newp string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	od, oname, err := f.parent("rename", oldp)
	if err != nil {
		return err
	}
	n, ok := od.children[oname]
	if !ok {
		return pathErr("rename", oldp, fs.ErrNotExist)
	}
	nd, nname, err := f.parent("rename", newp)
	if err != nil {
		return err
	}
	if oldp == newp {
		return nil
	}
	if n.dir && strings.HasPrefix(newp, oldp+"/") {
		return pathErr("rename", newp, fs.ErrInvalid) // into itself
	}
	if old, ok := nd.children[nname]; ok {
		switch {
		case n.dir && !old.dir:
			return pathErr("rename", newp, sandbox.ErrNotDir)
		case !n.dir && old.dir:
			return pathErr("rename", newp, sandbox.ErrIsDir)
		case old.dir && len(old.children) > 0:
			return pathErr("rename", newp, ErrNotEmpty)
		}
		f.detach(nd, nname, newp, old)
	}
	delete(od.children, oname)
	f.markTree(oldp, n)
	nd.children[nname] = n
	f.markTree(newp, n)
	return nil
}

// Chmod sets the permission bits of p.
func (f *FS) Chmod(p string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("chmod", p)
	if err != nil {
		return err
	}
	n.mode = mode & fs.ModePerm
	if p != "." {
		f.mark(p)
	}
	return nil
}

// Chtimes sets the modification time of p.
func (f *FS) Chtimes(p string, mtime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("chtimes", p)
	if err != nil {
		return err
	}
	n.mtime = mtime
	if p != "." {
		f.mark(p)
	}
	return nil
}

// Entry is a file or directory as its owner stores it.
type Entry struct {
	Path  string
	Dir   bool
	Mode  fs.FileMode // permission bits
	MTime time.Time
	Data  []byte // f's own: do not change it
}

// Get returns the entry at p, and false when p does not exist.
func (f *FS) Get(p string) (Entry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.walk("stat", p)
	if err != nil {
		return Entry{}, false
	}
	return Entry{Path: p, Dir: n.dir, Mode: n.mode, MTime: n.mtime, Data: n.data}, true
}

// Load replaces everything f holds with entries, as Put stores them.
func (f *FS) Load(entries []Entry) error {
	f.mu.Lock()
	f.root = &node{dir: true, mode: DirMode, mtime: f.now(), children: map[string]*node{}}
	f.size, f.count = 0, 0
	clear(f.changed)
	f.mu.Unlock()
	for _, e := range entries {
		if err := f.Put(e); err != nil {
			return err
		}
	}
	return nil
}

// Put stores e as it is, creating missing parent directories, without
// limits or change records: it is how an owner loads what it stored.
func (f *FS) Put(e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !fs.ValidPath(e.Path) || e.Path == "." {
		return pathErr("load", e.Path, fs.ErrInvalid)
	}
	d := f.root
	elems := strings.Split(e.Path, "/")
	for _, elem := range elems[:len(elems)-1] {
		c, ok := d.children[elem]
		if !ok {
			c = &node{dir: true, mode: DirMode, mtime: e.MTime, children: map[string]*node{}}
			d.children[elem] = c
			f.count++
		}
		if !c.dir {
			return pathErr("load", e.Path, sandbox.ErrNotDir)
		}
		d = c
	}
	name := elems[len(elems)-1]
	if old, ok := d.children[name]; ok {
		if old.dir && e.Dir {
			old.mode, old.mtime = e.Mode&fs.ModePerm, e.MTime
			return nil
		}
		d.children[name] = nil
		f.forget(old)
	}
	n := &node{dir: e.Dir, mode: e.Mode & fs.ModePerm, mtime: e.MTime}
	if e.Dir {
		n.children = map[string]*node{}
	} else {
		n.data = e.Data
	}
	d.children[name] = n
	f.adopt(n)
	return nil
}

// TakeChanges returns the paths created, changed or removed since the last
// call, sorted, and forgets them.
func (f *FS) TakeChanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.changed))
	for p := range f.changed {
		out = append(out, p)
	}
	clear(f.changed)
	slices.Sort(out)
	return out
}

// Changed reports whether any path changed since the last TakeChanges.
func (f *FS) Changed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changed) > 0
}
