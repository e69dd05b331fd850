package shell

import (
	crand "crypto/rand"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

// target is where a path of the script's view leads: a file system and a
// path in it, or a device.
type target struct {
	abs string    // clean and absolute
	fs  *memfs.FS // nil for a device
	rel string    // the io/fs path in fs
	dev string    // null, zero, stdin, stdout, stderr
	mnt *Mount    // the mount of fs
}

// abs makes name absolute against the working directory, cleaned.
func (r *Runner) abs(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = r.cwd + "/" + name
	}
	return path.Clean(name)
}

// resolve maps name onto a mount or a device; anything else is outside
// the sandbox (ErrEscape, which prints as "Permission denied").
func (r *Runner) resolve(name string) (target, error) {
	if name == "" {
		return target{}, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return target{}, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	abs := r.abs(name)
	switch abs {
	case "/dev/null", "/dev/zero", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/urandom", "/dev/random":
		return target{abs: abs, dev: strings.TrimPrefix(abs, "/dev/")}, nil
	case "/dev/fd/0":
		return target{abs: abs, dev: "stdin"}, nil
	case "/dev/fd/1":
		return target{abs: abs, dev: "stdout"}, nil
	case "/dev/fd/2":
		return target{abs: abs, dev: "stderr"}, nil
	}
	for i := range r.sh.cfg.Mounts {
		m := &r.sh.cfg.Mounts[i]
		if abs == m.Dir {
			return target{abs: abs, fs: m.FS, rel: ".", mnt: m}, nil
		}
		if strings.HasPrefix(abs, m.Dir+"/") {
			return target{abs: abs, fs: m.FS, rel: abs[len(m.Dir)+1:], mnt: m}, nil
		}
	}
	return target{}, &fs.PathError{Op: "open", Path: name, Err: sandbox.ErrEscape}
}

// deviceRead is how much a command reading an endless device whole
// (/dev/zero, /dev/urandom) gets; head -c N gets N (readN).
const deviceRead = 1 << 20

// readFile reads the file name of the script's view.
func (r *Runner) readFile(name string) ([]byte, error) {
	return r.readN(name, deviceRead)
}

// readN reads the file name; from an endless device, n bytes (at most
// maxPipe).
func (r *Runner) readN(name string, n int) ([]byte, error) {
	t, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	switch t.dev {
	case "":
	case "stdin":
		return io.ReadAll(r.stdin())
	case "zero", "urandom", "random":
		b := make([]byte, min(max(n, 0), maxPipe))
		if t.dev != "zero" {
			crand.Read(b)
		}
		return b, nil
	default:
		return nil, nil
	}
	return t.fs.ReadFile(t.rel)
}

// stat describes the file name of the script's view.
func (r *Runner) stat(name string) (memfs.Info, target, error) {
	t, err := r.resolve(name)
	if err != nil {
		return memfs.Info{}, t, err
	}
	if t.fs == nil {
		return devInfo(t.dev), t, nil
	}
	in, err := t.fs.Stat(t.rel)
	return in, t, err
}

func devInfo(name string) memfs.Info {
	return memfs.DeviceInfo(name)
}

var errNotDir = sandbox.ErrNotDir

// errText is how the C library words an error, as commands print it.
func errText(err error) string {
	switch {
	case errors.Is(err, sandbox.ErrEscape), errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, memfs.ErrNotEmpty):
		return "Directory not empty"
	case errors.Is(err, fs.ErrExist):
		return "File exists"
	case errors.Is(err, sandbox.ErrIsDir):
		return "Is a directory"
	case errors.Is(err, sandbox.ErrNotDir):
		return "Not a directory"
	case errors.Is(err, sandbox.ErrTooLarge):
		var pe *fs.PathError
		if errors.As(err, &pe) {
			if _, detail, ok := strings.Cut(pe.Err.Error(), ": "); ok {
				return "File too large (" + detail + ")"
			}
		}
		return "File too large"
	case errors.Is(err, fs.ErrInvalid):
		return "Invalid argument"
	case errors.Is(err, errBrokenPipe):
		return "Broken pipe"
	}
	return err.Error()
}
