package shell

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

func init() {

	for name, c := range map[string]command{
		"cat": cmdCat, "ls": cmdLs, "mkdir": cmdMkdir, "rmdir": cmdRmdir, "rm": cmdRm, "cp": cmdCp,
		"mv": cmdMv, "touch": cmdTouch, "ln": cmdLn, "chmod": cmdChmod, "basename": cmdBasename,
		"dirname": cmdDirname, "realpath": cmdRealpath, "readlink": cmdReadlink, "mktemp": cmdMktemp,
		"stat": cmdStat, "du": cmdDu, "file": cmdFile, "chown": cmdNoop, "chgrp": cmdNoop, "sync": cmdNoop,
	} {
		commands[name] = c
	}
}

func cmdNoop(*proc) int { return 0 }

func cmdCat(p *proc) int {
	f, err := p.parseFlags(p.args, "nbsEAvTeu", "", map[string]byte{"number": 'n', "number-nonblank": 'b', "squeeze-blank": 's', "show-ends": 'E', "show-all": 'A'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	number, nonblank, squeeze, ends := f.has('n'), f.has('b'), f.has('s'), f.has('E') || f.has('A') || f.has('e')
	tabs := f.has('T') || f.has('A')
	plain := !number && !nonblank && !squeeze && !ends && !tabs
	n := 0
	prevBlank := false
	return p.inputs(f.rest, func(_ string, data []byte) error {
		if plain {
			return p.writeBytes(data)
		}
		var b []byte
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			p.step()
			body := strings.TrimSuffix(line, "\n")
			nl := len(body) < len(line)
			blank := body == ""
			if squeeze && blank && prevBlank {
				continue
			}
			prevBlank = blank
			if nonblank && !blank || number && !nonblank {
				n++
				b = fmt.Appendf(b, "%6d\t", n)
			}
			if tabs {
				body = strings.ReplaceAll(body, "\t", "^I")
			}
			b = append(b, body...)
			if ends && nl {
				b = append(b, '$')
			}
			if nl {
				b = append(b, '\n')
			}
		}
		return p.write(string(b))
	})
}

// lsEntry is one name ls prints.
type lsEntry struct {
	name string
	info memfs.Info
}

func cmdLs(p *proc) int {
	f, err := p.parseFlags(p.args, "aAlhrtSR1dFpiGgonQU", "", map[string]byte{"all": 'a', "almost-all": 'A', "recursive": 'R', "human-readable": 'h', "reverse": 'r', "directory": 'd', "classify": 'F', "color": 'G'}, true)
	if err != nil {
		return p.usage("%s\nTry 'ls --help' for more information.", err)
	}
	names := f.rest
	if len(names) == 0 {
		names = []string{"."}
	}
	status := 0
	var files []lsEntry
	var dirs []lsEntry
	for _, name := range names {
		in, _, err := p.r.stat(name)
		if err != nil {
			if isNotExist(err) {
				p.errorf("cannot access '%s': %s", name, errText(err))
			} else {
				p.errorf("cannot open directory '%s': %s", name, errText(err))
			}
			status = 2
			continue
		}
		if in.IsDir() && !f.has('d') {
			dirs = append(dirs, lsEntry{name: name, info: in})
		} else {
			files = append(files, lsEntry{name: name, info: in})
		}
	}
	lsSort(files, f)
	sort.SliceStable(dirs, func(i, j int) bool { return dirs[i].name < dirs[j].name })
	if f.has('r') {
		slices.Reverse(dirs)
	}
	var b []byte
	b = lsPrint(b, files, f, false)
	header := len(names) > 1 || f.has('R')
	first := len(files) == 0
	var listDir func(name string) bool
	listDir = func(name string) bool {
		t, err := p.r.resolve(name)
		if err != nil || t.fs == nil {
			p.errorf("cannot open directory '%s': Permission denied", name)
			return false
		}
		infos, err := t.fs.ReadDir(t.rel)
		if err != nil {
			p.errorf("cannot open directory '%s': %s", name, errText(err))
			return false
		}
		var entries []lsEntry
		if f.has('a') {
			self, _ := t.fs.Stat(t.rel)
			entries = append(entries, lsEntry{name: ".", info: self}, lsEntry{name: "..", info: self})
		}
		for _, in := range infos {
			if strings.HasPrefix(in.Name(), ".") && !f.has('a') && !f.has('A') {
				continue
			}
			entries = append(entries, lsEntry{name: in.Name(), info: in})
		}
		lsSort(entries, f)
		if !first {
			b = append(b, "\n"...)
		}
		first = false
		if header {
			b = append(b, name+":\n"...)
		}
		b = lsPrint(b, entries, f, true)
		if f.has('R') {
			for _, e := range entries {
				if e.info.IsDir() && e.name != "." && e.name != ".." {
					p.step()
					if !listDir(strings.TrimSuffix(name, "/") + "/" + e.name) {
						status = 1
					}
				}
			}
		}
		return true
	}
	for _, d := range dirs {
		if !listDir(d.name) {
			status = 2
		}
	}
	if err := p.write(string(b)); err != nil {
		return 2
	}
	return status
}

func lsSort(entries []lsEntry, f *flagSet) {
	if f.has('U') {
		return
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		switch {
		case f.has('t') && !a.info.ModTime().Equal(b.info.ModTime()):
			return a.info.ModTime().After(b.info.ModTime())
		case f.has('S') && a.info.Size() != b.info.Size():
			return a.info.Size() > b.info.Size()
		}
		return a.name < b.name
	})
	if f.has('r') {
		slices.Reverse(entries)
	}
}

func lsPrint(b []byte, entries []lsEntry, f *flagSet, total bool) []byte {
	long := f.has('l') || f.has('g') || f.has('o') || f.has('n')
	if long && total {
		blocks := int64(0)
		for _, e := range entries {
			if !e.info.IsDir() {
				blocks += (e.info.Size() + 4095) / 4096 * 4
			} else {
				blocks += 4
			}
		}
		b = fmt.Appendf(b, "total %d\n", blocks)
	}
	for _, e := range entries {
		name := e.name
		if f.has('F') || f.has('p') {
			switch {
			case e.info.IsDir():
				name += "/"
			case f.has('F') && e.info.Mode()&0o111 != 0:
				name += "*"
			}
		}
		if !long {
			b = append(b, name+"\n"...)
			continue
		}
		size := strconv.FormatInt(e.info.Size(), 10)
		if e.info.IsDir() {
			size = "4096"
		}
		if f.has('h') {
			size = humanSize(e.info.Size())
			if e.info.IsDir() {
				size = "4.0K"
			}
		}
		links := 1
		if e.info.IsDir() {
			links = 2
		}
		owner := "user user"
		if f.has('g') || f.has('o') {
			owner = "user"
		}
		b = fmt.Appendf(b, "%s %d %s %5s %s %s\n", modeString(e.info.Mode()), links, owner, size, lsTime(e.info.ModTime()), name)
	}
	return b
}

func lsTime(t time.Time) string {
	t = t.UTC()
	if time.Since(t) > 180*24*time.Hour || time.Until(t) > time.Hour {
		return t.Format("Jan _2  2006")
	}
	return t.Format("Jan _2 15:04")
}

// modeString prints a mode as ls -l does: drwxr-xr-x.
func modeString(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	return string(b)
}

func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	v := float64(n)
	for _, unit := range []string{"K", "M", "G", "T"} {
		v /= 1024
		if v < 1024 {
			if v < 10 {
				return fmt.Sprintf("%.1f%s", ceilTenth(v), unit)
			}
			return fmt.Sprintf("%.0f%s", ceil(v), unit)
		}
	}
	return fmt.Sprintf("%.0fP", v/1024)
}

func ceilTenth(v float64) float64 { return ceil(v*10) / 10 }

func ceil(v float64) float64 {
	i := float64(int64(v))
	if v > i {
		return i + 1
	}
	return i
}

func cmdMkdir(p *proc) int {
	f, err := p.parseFlags(p.args, "pv", "m", map[string]byte{"parents": 'p', "verbose": 'v', "mode": 'm'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	if len(f.rest) == 0 {
		return p.usage("missing operand")
	}
	status := 0
	for _, name := range f.rest {
		t, err := p.r.resolve(name)
		if err == nil && t.fs == nil {
			err = &fs.PathError{Op: "mkdir", Path: name, Err: fs.ErrExist}
		}
		if err == nil {
			if f.has('p') {
				err = t.fs.MkdirAll(t.rel)
			} else {
				err = t.fs.Mkdir(t.rel)
			}
		}
		if err != nil {
			p.errorf("cannot create directory '%s': %s", name, errText(err))
			status = 1
			continue
		}
		if m, ok := f.val('m'); ok {
			if mode, ok := parseMode(m, memfs.DirMode, true); ok {
				t.fs.Chmod(t.rel, mode)
			}
		}
		if f.has('v') {
			p.write(fmt.Sprintf("mkdir: created directory '%s'\n", name))
		}
	}
	return status
}

func cmdRmdir(p *proc) int {
	f, err := p.parseFlags(p.args, "pv", "", map[string]byte{"parents": 'p', "ignore-fail-on-non-empty": 'i'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	status := 0
	for _, name := range f.rest {
		for {
			in, t, err := p.r.stat(name)
			if err == nil && !in.IsDir() {
				err = &fs.PathError{Err: errNotDir}
			}
			if err == nil {
				err = t.fs.Remove(t.rel)
			}
			if err != nil {
				if !(f.has('i') && errText(err) == "Directory not empty") {
					p.errorf("failed to remove '%s': %s", name, errText(err))
					status = 1
				}
				break
			}
			if !f.has('p') {
				break
			}
			parent := path.Dir(strings.TrimSuffix(name, "/"))
			if parent == "." || parent == "/" || parent == name {
				break
			}
			name = parent
		}
	}
	return status
}

func cmdRm(p *proc) int {
	f, err := p.parseFlags(p.args, "rRfivdI", "", map[string]byte{"recursive": 'r', "force": 'f', "verbose": 'v', "dir": 'd'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	recursive := f.has('r') || f.has('R')
	if len(f.rest) == 0 && !f.has('f') {
		return p.usage("missing operand\nTry 'rm --help' for more information.")
	}
	status := 0
	for _, name := range f.rest {
		base := path.Base(strings.TrimRight(name, "/"))
		if base == "." || base == ".." {
			p.errorf("refusing to remove '.' or '..' directory: skipping '%s'", name)
			status = 1
			continue
		}
		in, t, err := p.r.stat(name)
		if err != nil {
			if !(f.has('f') && isNotExist(err)) {
				p.errorf("cannot remove '%s': %s", name, errText(err))
				status = 1
			}
			continue
		}
		if t.fs == nil || t.rel == "." {
			p.errorf("cannot remove '%s': Permission denied", name)
			status = 1
			continue
		}
		if in.IsDir() {
			if !recursive && !f.has('d') {
				p.errorf("cannot remove '%s': Is a directory", name)
				status = 1
				continue
			}
			if recursive {
				err = t.fs.RemoveAll(t.rel)
			} else {
				err = t.fs.Remove(t.rel)
			}
		} else {
			err = t.fs.Remove(t.rel)
		}
		if err != nil {
			p.errorf("cannot remove '%s': %s", name, errText(err))
			status = 1
			continue
		}
		if f.has('v') {
			p.write(fmt.Sprintf("removed '%s'\n", name))
		}
	}
	return status
}

// copyTree copies src (a file or, with recursive, a directory) to dst.
func (p *proc) copyTree(src, dst target, recursive, preserve, noClobber bool, srcName string) error {
	p.step()
	in, err := src.fs.Stat(src.rel)
	if err != nil {
		return err
	}
	if in.IsDir() {
		if !recursive {
			return fmt.Errorf("-r not specified; omitting directory '%s'", srcName)
		}
		if dst.fs == src.fs && (dst.rel == src.rel || strings.HasPrefix(dst.rel, src.rel+"/") || src.rel == ".") {
			return fmt.Errorf("cannot copy a directory, '%s', into itself, '%s'", srcName, dst.abs)
		}
		if err := dst.fs.MkdirAll(dst.rel); err != nil {
			return err
		}
		entries, err := src.fs.ReadDir(src.rel)
		if err != nil {
			return err
		}
		for _, e := range entries {
			s, d := src, dst
			s.rel, s.abs = path.Join(src.rel, e.Name()), path.Join(src.abs, e.Name())
			d.rel, d.abs = path.Join(dst.rel, e.Name()), path.Join(dst.abs, e.Name())
			if err := p.copyTree(s, d, recursive, preserve, noClobber, path.Join(srcName, e.Name())); err != nil {
				return err
			}
		}
		if preserve {
			dst.fs.Chmod(dst.rel, in.Mode().Perm())
		}
		return nil
	}
	if noClobber {
		if _, err := dst.fs.Stat(dst.rel); err == nil {
			return nil
		}
	}
	data, err := src.fs.ReadFile(src.rel)
	if err != nil {
		return err
	}
	_, existed := dst.fs.Stat(dst.rel)
	if err := dst.fs.WriteFile(dst.rel, data); err != nil {
		return err
	}
	if preserve || existed != nil {
		dst.fs.Chmod(dst.rel, in.Mode().Perm())
	}
	if preserve {
		dst.fs.Chtimes(dst.rel, in.ModTime())
	}
	return nil
}

// destination resolves where cp and mv put src: into dst when dst is a
// directory (or more than one source is given).
func (p *proc) destination(src, dst string, many bool) (target, bool, error) {
	dt, err := p.r.resolve(dst)
	if err != nil {
		return target{}, false, err
	}
	if dt.fs == nil {
		return target{}, false, &fs.PathError{Op: "open", Path: dst, Err: fs.ErrPermission}
	}
	in, err := dt.fs.Stat(dt.rel)
	if err == nil && in.IsDir() {
		base := path.Base(strings.TrimRight(src, "/"))
		dt.rel, dt.abs = path.Join(dt.rel, base), path.Join(dt.abs, base)
		return dt, true, nil
	}
	if many {
		return target{}, false, fmt.Errorf("target '%s' is not a directory", dst)
	}
	return dt, false, nil
}

func cmdCp(p *proc) int {
	f, err := p.parseFlags(p.args, "rRfipvanuLPdHT", "t", map[string]byte{"recursive": 'r', "force": 'f', "preserve": 'p', "verbose": 'v', "archive": 'a', "no-clobber": 'n', "target-directory": 't'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	args := f.rest
	if t, ok := f.val('t'); ok {
		args = append(args, t)
	}
	if len(args) < 2 {
		if len(args) == 1 {
			return p.usage("missing destination file operand after '%s'", args[0])
		}
		return p.usage("missing file operand")
	}
	recursive := f.has('r') || f.has('R') || f.has('a')
	dst := args[len(args)-1]
	status := 0
	for _, src := range args[:len(args)-1] {
		st, err := p.r.resolve(src)
		if err == nil && st.fs == nil {
			err = &fs.PathError{Err: fs.ErrPermission}
		}
		if err == nil {
			_, err = st.fs.Stat(st.rel)
		}
		if err != nil {
			p.errorf("cannot stat '%s': %s", src, errText(err))
			status = 1
			continue
		}
		dt, _, err := p.destination(src, dst, len(args) > 2)
		if err != nil {
			p.errorf("%s", cpErr(err, dst))
			status = 1
			continue
		}
		if dt.fs == st.fs && dt.rel == st.rel {
			p.errorf("'%s' and '%s' are the same file", src, dt.abs)
			status = 1
			continue
		}
		if err := p.copyTree(st, dt, recursive, f.has('p') || f.has('a'), f.has('n'), src); err != nil {
			p.errorf("%s", cpErr(err, dst))
			status = 1
			continue
		}
		if f.has('v') {
			p.write(fmt.Sprintf("'%s' -> '%s'\n", src, dst))
		}
	}
	return status
}

func cpErr(err error, dst string) string {
	if _, ok := err.(*fs.PathError); ok {
		return fmt.Sprintf("cannot create regular file '%s': %s", dst, errText(err))
	}
	return err.Error()
}

func cmdMv(p *proc) int {
	f, err := p.parseFlags(p.args, "fivnuTb", "t", map[string]byte{"force": 'f', "verbose": 'v', "no-clobber": 'n', "target-directory": 't'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	args := f.rest
	if t, ok := f.val('t'); ok {
		args = append(args, t)
	}
	if len(args) < 2 {
		if len(args) == 1 {
			return p.usage("missing destination file operand after '%s'", args[0])
		}
		return p.usage("missing file operand")
	}
	dst := args[len(args)-1]
	status := 0
	for _, src := range args[:len(args)-1] {
		st, err := p.r.resolve(src)
		if err == nil && (st.fs == nil || st.rel == ".") {
			err = &fs.PathError{Err: fs.ErrPermission}
		}
		if err == nil {
			_, err = st.fs.Stat(st.rel)
		}
		if err != nil {
			p.errorf("cannot stat '%s': %s", src, errText(err))
			status = 1
			continue
		}
		dt, _, err := p.destination(src, dst, len(args) > 2)
		if err != nil {
			if _, ok := err.(*fs.PathError); ok {
				p.errorf("cannot move '%s' to '%s': %s", src, dst, errText(err))
			} else {
				p.errorf("%s", err)
			}
			status = 1
			continue
		}
		if f.has('n') {
			if _, err := dt.fs.Stat(dt.rel); err == nil {
				continue
			}
		}
		if dt.fs == st.fs {
			if strings.HasPrefix(dt.rel, st.rel+"/") {
				p.errorf("cannot move '%s' to a subdirectory of itself, '%s'", src, dt.abs)
				status = 1
				continue
			}
			err = st.fs.Rename(st.rel, dt.rel)
		} else {
			// Across file systems: copy, then remove, as mv(1) does.
			err = p.copyTree(st, dt, true, true, false, src)
			if err == nil {
				err = st.fs.RemoveAll(st.rel)
			}
		}
		if err != nil {
			p.errorf("cannot move '%s' to '%s': %s", src, dst, errText(err))
			status = 1
			continue
		}
		if f.has('v') {
			p.write(fmt.Sprintf("renamed '%s' -> '%s'\n", src, dst))
		}
	}
	return status
}

func cmdTouch(p *proc) int {
	f, err := p.parseFlags(p.args, "acmfh", "dtr", map[string]byte{"no-create": 'c', "date": 'd', "reference": 'r'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	if len(f.rest) == 0 {
		return p.usage("missing file operand")
	}
	when := p.r.sh.now()
	if d, ok := f.val('d'); ok {
		t, err := parseDate(d, when)
		if err != nil {
			return p.usage("invalid date format '%s'", d)
		}
		when = t
	}
	if ref, ok := f.val('r'); ok {
		in, _, err := p.r.stat(ref)
		if err != nil {
			p.errorf("failed to get attributes of '%s': %s", ref, errText(err))
			return 1
		}
		when = in.ModTime()
	}
	status := 0
	for _, name := range f.rest {
		t, err := p.r.resolve(name)
		if err == nil && t.fs == nil {
			continue
		}
		if err == nil {
			if _, serr := t.fs.Stat(t.rel); serr != nil {
				if f.has('c') {
					continue
				}
				err = t.fs.WriteFile(t.rel, nil)
			}
		}
		if err == nil {
			err = t.fs.Chtimes(t.rel, when)
		}
		if err != nil {
			p.errorf("cannot touch '%s': %s", name, errText(err))
			status = 1
		}
	}
	return status
}

func cmdLn(p *proc) int {
	p.errorf("links are not supported in this sandbox; copy the file with cp")
	return 1
}

// parseMode applies a chmod mode (octal, or symbolic such as u+x,go-w)
// to old.
func parseMode(s string, old fs.FileMode, isDir bool) (fs.FileMode, bool) {
	if n, err := strconv.ParseUint(s, 8, 32); err == nil {
		return fs.FileMode(n) & fs.ModePerm, true
	}
	mode := old & fs.ModePerm
	for _, clause := range strings.Split(s, ",") {
		i := 0
		var who fs.FileMode
		for i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0 {
			switch clause[i] {
			case 'u':
				who |= 0o700
			case 'g':
				who |= 0o070
			case 'o':
				who |= 0o007
			case 'a':
				who |= 0o777
			}
			i++
		}
		if who == 0 {
			who = 0o777 &^ 0o022 // the umask applies when no one is named
		}
		if i >= len(clause) {
			return 0, false
		}
		for i < len(clause) {
			op := clause[i]
			if op != '+' && op != '-' && op != '=' {
				return 0, false
			}
			i++
			var perm fs.FileMode
			for i < len(clause) && strings.IndexByte("rwxX", clause[i]) >= 0 {
				switch clause[i] {
				case 'r':
					perm |= 0o444
				case 'w':
					perm |= 0o222
				case 'x':
					perm |= 0o111
				case 'X':
					if isDir || mode&0o111 != 0 {
						perm |= 0o111
					}
				}
				i++
			}
			perm &= who
			switch op {
			case '+':
				mode |= perm
			case '-':
				mode &^= perm
			case '=':
				mode = mode&^who | perm
			}
		}
	}
	return mode, true
}

func cmdChmod(p *proc) int {
	args := p.args
	recursive := false
	for len(args) > 0 && (args[0] == "-R" || args[0] == "-v" || args[0] == "-f" || args[0] == "-c") {
		recursive = recursive || args[0] == "-R"
		args = args[1:]
	}
	if len(args) < 2 {
		return p.usage("missing operand")
	}
	spec := args[0]
	status := 0
	var apply func(t target, name string)
	apply = func(t target, name string) {
		p.step()
		in, err := t.fs.Stat(t.rel)
		if err != nil {
			p.errorf("cannot access '%s': %s", name, errText(err))
			status = 1
			return
		}
		mode, ok := parseMode(spec, in.Mode(), in.IsDir())
		if !ok {
			p.errorf("invalid mode: '%s'", spec)
			status = 1
			return
		}
		t.fs.Chmod(t.rel, mode)
		if recursive && in.IsDir() {
			entries, _ := t.fs.ReadDir(t.rel)
			for _, e := range entries {
				c := t
				c.rel = path.Join(t.rel, e.Name())
				apply(c, path.Join(name, e.Name()))
			}
		}
	}
	for _, name := range args[1:] {
		t, err := p.r.resolve(name)
		if err != nil || t.fs == nil {
			p.errorf("cannot access '%s': Permission denied", name)
			status = 1
			continue
		}
		apply(t, name)
	}
	return status
}

func cmdBasename(p *proc) int {
	args := p.args
	multi := false
	suffix := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		switch {
		case args[0] == "-a" || args[0] == "--multiple":
			multi = true
		case args[0] == "-s" && len(args) > 1:
			suffix, multi = args[1], true
			args = args[1:]
		case strings.HasPrefix(args[0], "--suffix="):
			suffix, multi = strings.TrimPrefix(args[0], "--suffix="), true
		case args[0] == "--":
			args = args[1:]
			goto operands
		case args[0] == "-z":
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(args[0], "-"))
		}
		args = args[1:]
	}
operands:
	if len(args) == 0 {
		return p.usage("missing operand")
	}
	if !multi {
		if len(args) > 2 {
			return p.usage("extra operand '%s'", args[2])
		}
		if len(args) == 2 {
			suffix = args[1]
		}
		args = args[:1]
	}
	var b []byte
	for _, a := range args {
		base := baseName(a)
		if suffix != "" && base != suffix && strings.HasSuffix(base, suffix) {
			base = strings.TrimSuffix(base, suffix)
		}
		b = append(b, base+"\n"...)
	}
	p.write(string(b))
	return 0
}

func baseName(s string) string {
	if s == "" {
		return ""
	}
	t := strings.TrimRight(s, "/")
	if t == "" {
		return "/"
	}
	return t[strings.LastIndexByte(t, '/')+1:]
}

func dirName(s string) string {
	t := strings.TrimRight(s, "/")
	if t == "" {
		if s == "" {
			return "."
		}
		return "/"
	}
	i := strings.LastIndexByte(t, '/')
	if i < 0 {
		return "."
	}
	d := strings.TrimRight(t[:i], "/")
	if d == "" {
		return "/"
	}
	return d
}

func cmdDirname(p *proc) int {
	if len(p.args) == 0 {
		return p.usage("missing operand")
	}
	var b []byte
	for _, a := range p.args {
		b = append(b, dirName(a)+"\n"...)
	}
	p.write(string(b))
	return 0
}

func cmdRealpath(p *proc) int {
	args := p.args
	mustExist, quiet := false, false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-e":
			mustExist = true
		case "-q":
			quiet = true
		case "-m", "-s", "-L", "-P", "--no-symlinks":
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(args[0], "-"))
		}
		args = args[1:]
	}
	status := 0
	for _, a := range args {
		abs := p.r.abs(a)
		if mustExist {
			if _, _, err := p.r.stat(a); err != nil {
				if !quiet {
					p.errorf("%s: %s", a, errText(err))
				}
				status = 1
				continue
			}
		}
		p.write(abs + "\n")
	}
	return status
}

func cmdReadlink(p *proc) int {
	args := p.args
	canon := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if strings.ContainsAny(args[0], "fem") {
			canon = true
		}
		args = args[1:]
	}
	if !canon {
		return 1 // nothing here is a symbolic link
	}
	for _, a := range args {
		p.write(p.r.abs(a) + "\n")
	}
	return 0
}

func cmdMktemp(p *proc) int {
	args := p.args
	dir, isDir, dry := "", false, false
	tmpdir := p.r.getString("TMPDIR")
	if tmpdir == "" {
		tmpdir = "/tmp"
	}
	useTmp := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		switch {
		case a == "-d" || a == "--directory":
			isDir = true
		case a == "-u" || a == "--dry-run":
			dry = true
		case a == "-q" || a == "--quiet":
		case a == "-t":
			useTmp = true
		case a == "-p" && len(args) > 0:
			dir = args[0]
			args = args[1:]
		case strings.HasPrefix(a, "--tmpdir"):
			dir = strings.TrimPrefix(strings.TrimPrefix(a, "--tmpdir"), "=")
			if dir == "" {
				dir = tmpdir
			}
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		}
	}
	tmpl := "tmp.XXXXXXXXXX"
	if len(args) > 0 {
		tmpl = args[0]
		if useTmp && dir == "" {
			dir = tmpdir
		}
	} else if dir == "" {
		dir = tmpdir
	}
	if !strings.HasSuffix(tmpl, "XXX") {
		p.errorf("too few X's in template '%s'", tmpl)
		return 1
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for try := 0; try < 100; try++ {
		name := []byte(tmpl)
		for i := len(name) - 1; i >= 0 && name[i] == 'X'; i-- {
			name[i] = letters[rand.IntN(len(letters))]
		}
		full := string(name)
		if dir != "" {
			full = strings.TrimSuffix(dir, "/") + "/" + full
		}
		t, err := p.r.resolve(full)
		if err != nil || t.fs == nil {
			p.errorf("failed to create file via template '%s': Permission denied", full)
			return 1
		}
		if _, err := t.fs.Stat(t.rel); err == nil {
			continue
		}
		if !dry {
			if isDir {
				err = t.fs.Mkdir(t.rel)
				if err == nil {
					t.fs.Chmod(t.rel, 0o700)
				}
			} else {
				err = t.fs.WriteFile(t.rel, nil)
				if err == nil {
					t.fs.Chmod(t.rel, 0o600)
				}
			}
			if err != nil {
				p.errorf("failed to create file via template '%s': %s", full, errText(err))
				return 1
			}
		}
		p.write(full + "\n")
		return 0
	}
	p.errorf("failed to create a unique name from template '%s'", tmpl)
	return 1
}

func cmdStat(p *proc) int {
	args := p.args
	format := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		switch {
		case (a == "-c" || a == "--format" || a == "--printf") && len(args) > 0:
			format = args[0]
			if a != "--printf" {
				format += "\n"
			}
			args = args[1:]
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=") + "\n"
		case strings.HasPrefix(a, "-c"):
			format = a[2:] + "\n"
		case a == "-L" || a == "-t":
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		}
	}
	if len(args) == 0 {
		return p.usage("missing operand")
	}
	status := 0
	for _, name := range args {
		in, _, err := p.r.stat(name)
		if err != nil {
			p.errorf("cannot statx '%s': %s", name, errText(err))
			status = 1
			continue
		}
		kind := "regular file"
		switch {
		case in.IsDir():
			kind = "directory"
		case in.Mode()&fs.ModeCharDevice != 0:
			kind = "character special file"
		case in.Size() == 0:
			kind = "regular empty file"
		}
		if format == "" {
			p.write(fmt.Sprintf("  File: %s\n  Size: %d\t\t%s\nAccess: (%04o/%s)  Uid: ( 1000/    user)   Gid: ( 1000/    user)\nModify: %s\n",
				name, in.Size(), kind, in.Mode().Perm(), modeString(in.Mode()), in.ModTime().UTC().Format("2006-01-02 15:04:05.000000000 -0700")))
			continue
		}
		var b []byte
		for i := 0; i < len(format); i++ {
			c := format[i]
			if c == '\\' && i+1 < len(format) {
				n, s, _ := escape(format[i+1:], false)
				b = append(b, s...)
				i += n
				continue
			}
			if c != '%' || i+1 >= len(format) {
				b = append(b, c)
				continue
			}
			i++
			// One WriteString for every directive: inlined at each, it was
			// most of this function's wasm.
			var s string
			switch format[i] {
			case 'n':
				s = name
			case 's':
				s = strconv.FormatInt(in.Size(), 10)
			case 'F':
				s = kind
			case 'a':
				s = strconv.FormatUint(uint64(in.Mode().Perm()), 8)
			case 'A':
				s = modeString(in.Mode())
			case 'Y':
				s = strconv.FormatInt(in.ModTime().Unix(), 10)
			case 'y':
				s = in.ModTime().UTC().Format("2006-01-02 15:04:05.000000000 -0700")
			case 'U', 'G':
				s = "user"
			case 'u', 'g':
				s = "1000"
			case 'h':
				s = "1"
			case '%':
				s = "%"
			default:
				s = "?"
			}
			b = append(b, s...)
		}
		p.write(string(b))
	}
	return status
}

func cmdDu(p *proc) int {
	args := p.args
	summary, human, bytesOnly := false, false, false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		for _, c := range args[0][1:] {
			switch c {
			case 's':
				summary = true
			case 'h':
				human = true
			case 'b':
				bytesOnly = true
			case 'c', 'a', 'k', 'x', 'L':
			default:
				return p.usage("invalid option -- '%c'", c)
			}
		}
		args = args[1:]
	}
	if len(args) == 0 {
		args = []string{"."}
	}
	show := func(n int64, name string) {
		v := strconv.FormatInt((n+1023)/1024, 10)
		switch {
		case human:
			v = humanSize(n)
		case bytesOnly:
			v = strconv.FormatInt(n, 10)
		}
		p.write(v + "\t" + name + "\n")
	}
	status := 0
	var walk func(t target, name string, top bool) int64
	walk = func(t target, name string, top bool) int64 {
		p.step()
		in, err := t.fs.Stat(t.rel)
		if err != nil {
			return 0
		}
		if !in.IsDir() {
			if top {
				show(in.Size(), name)
			}
			return in.Size()
		}
		total := int64(0)
		entries, _ := t.fs.ReadDir(t.rel)
		for _, e := range entries {
			c := t
			c.rel = path.Join(t.rel, e.Name())
			total += walk(c, path.Join(name, e.Name()), false)
		}
		if top || !summary && in.IsDir() {
			show(total, name)
		}
		return total
	}
	for _, a := range args {
		t, err := p.r.resolve(a)
		if err == nil && t.fs != nil {
			_, err = t.fs.Stat(t.rel)
		}
		if err != nil {
			p.errorf("cannot access '%s': %s", a, errText(err))
			status = 1
			continue
		}
		walk(t, a, true)
	}
	return status
}

func cmdFile(p *proc) int {
	status := 0
	for _, name := range p.args {
		in, t, err := p.r.stat(name)
		if err != nil {
			p.write(fmt.Sprintf("%s: cannot open `%s' (%s)\n", name, name, errText(err)))
			continue
		}
		kind := "data"
		switch {
		case in.IsDir():
			kind = "directory"
		case t.fs == nil:
			kind = "character special"
		case in.Size() == 0:
			kind = "empty"
		default:
			b, _ := t.fs.ReadFile(t.rel)
			switch {
			case strings.HasPrefix(string(b), "#!"):
				kind = "script, ASCII text executable"
			case utf8.Valid(b) && !strings.ContainsRune(string(b), 0):
				kind = "ASCII text"
				for _, c := range b {
					if c >= 0x80 {
						kind = "Unicode text, UTF-8 text"
						break
					}
				}
			case strings.HasPrefix(string(b), "\x89PNG"):
				kind = "PNG image data"
			case strings.HasPrefix(string(b), "\x1f\x8b"):
				kind = "gzip compressed data"
			case strings.HasPrefix(string(b), "PK\x03\x04"):
				kind = "Zip archive data"
			case strings.HasPrefix(string(b), "%PDF"):
				kind = "PDF document"
			}
		}
		p.write(name + ": " + kind + "\n")
	}
	return status
}
