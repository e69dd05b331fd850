package sandbox

import (
	"errors"
	"io/fs"
)

// Errors a sandbox's operations wrap, besides io/fs's ErrNotExist,
// ErrExist, ErrPermission and ErrInvalid, and errors.ErrUnsupported (an
// operation the kind does not offer, such as symbolic links in the empty
// kind). Each kind returns the same error for the same failure, so callers
// branch on them with errors.Is.
var (
	// ErrEscape: the path leaves the sandbox's working directory. It is
	// also fs.ErrPermission.
	ErrEscape error = &sentinel{msg: "path escapes the sandbox", also: fs.ErrPermission}

	// ErrNotText: ReadText of a file that is not UTF-8 text. It is also
	// fs.ErrInvalid.
	ErrNotText error = &sentinel{msg: "not a text file", also: fs.ErrInvalid}

	// ErrIsDir: a file operation on a directory.
	ErrIsDir = errors.New("is a directory")

	// ErrNotDir: a directory operation on a file, or a path through one.
	ErrNotDir = errors.New("not a directory")

	// ErrTooLarge: a file, or the sandbox as a whole, would pass the
	// sandbox's Limits. The error's text says which limit.
	ErrTooLarge = errors.New("too large")

	// ErrUnavailable: Open of a kind that this module does not link, or
	// that this host does not offer (local on Workers). The error's text
	// says why.
	ErrUnavailable = errors.New("sandbox kind unavailable")
)

// sentinel is an error that is also a more general one, so that
// errors.Is(ErrEscape, fs.ErrPermission) holds.
type sentinel struct {
	msg  string
	also error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports the general error this one refines.
func (e *sentinel) Is(target error) bool { return target == e.also }
