package tool

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
)

// GlobIn is the glob tool's arguments.
type GlobIn struct {
	Pattern string `json:"pattern" jsonschema:"description=A glob such as **/*.go or src/*.ts: * ? [..] within a name\\, ** across directories"`
	Path    string `json:"path,omitempty" jsonschema:"description=The directory to search (default: the working directory)"`
}

// Glob lists the files of sb whose paths match a pattern, sorted, at most
// 1,000.
func Glob(spec sandbox.Spec) Tool {
	return New("glob", "Lists the files whose paths match a glob pattern, sorted by path.",
		func(ctx *agent.Context, in GlobIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			segs, err := globSegments(in.Pattern)
			if err != nil {
				return "", err
			}
			var b strings.Builder
			n := 0
			err = walk(ctx, sb, in.Path, func(rel string, dir bool) error {
				if dir || !matchGlob(segs, strings.Split(rel, "/")) {
					return nil
				}
				if n++; n > GlobPaths {
					return errStop
				}
				b.WriteString(display(in.Path, rel))
				b.WriteByte('\n')
				return nil
			})
			switch {
			case errors.Is(err, errStop):
				fmt.Fprintf(&b, "[the first %d paths; narrow the pattern for the rest]\n", GlobPaths)
			case err != nil:
				return "", err
			case n == 0:
				return "[no files match " + in.Pattern + "]\n", nil
			}
			return b.String(), nil
		}).Idempotent()
}

// GrepIn is the grep tool's arguments.
type GrepIn struct {
	Pattern    string `json:"pattern" jsonschema:"description=A regular expression (RE2 syntax)"`
	Path       string `json:"path,omitempty" jsonschema:"description=A file or directory to search (default: the working directory)"`
	Include    string `json:"include,omitempty" jsonschema:"description=Only files whose path matches this glob\\, such as *.go"`
	IgnoreCase bool   `json:"ignore_case,omitempty"`
}

// Grep searches the text files of sb for a regular expression, listing
// path:line:text, at most 100 matches.
func Grep(spec sandbox.Spec) Tool {
	return New("grep", "Searches text files for a regular expression and lists the matching lines as path:line:text.",
		func(ctx *agent.Context, in GrepIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			expr := in.Pattern
			if in.IgnoreCase {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				return "", fmt.Errorf("pattern: %w", err)
			}
			var include []string
			if in.Include != "" {
				if include, err = globSegments(in.Include); err != nil {
					return "", fmt.Errorf("include: %w", err)
				}
			}
			var b strings.Builder
			n := 0
			search := func(rel, name string) error {
				text, err := sb.ReadText(ctx, name)
				if err != nil {
					if errors.Is(err, sandbox.ErrNotText) {
						return nil // binary files have no lines
					}
					return pathError(err)
				}
				for i, line := range strings.Split(text, "\n") {
					if !re.MatchString(line) {
						continue
					}
					if n++; n > GrepMatches {
						return errStop
					}
					if len(line) > 500 {
						line = line[:500] + "…"
					}
					fmt.Fprintf(&b, "%s:%d:%s\n", rel, i+1, line)
				}
				return nil
			}
			root := in.Path
			file, err := isFile(ctx, sb, root)
			if err != nil {
				return "", err
			}
			if file {
				err = search(root, root)
			} else {
				err = walk(ctx, sb, root, func(rel string, dir bool) error {
					if dir {
						return nil
					}
					if include != nil && !matchGlob(include, strings.Split(rel, "/")) && !matchGlob(include, []string{path.Base(rel)}) {
						return nil
					}
					return search(display(root, rel), path.Join(dirOr(root), rel))
				})
			}
			switch {
			case errors.Is(err, errStop):
				fmt.Fprintf(&b, "[the first %d matches; narrow the pattern or the path for the rest]\n", GrepMatches)
			case err != nil:
				return "", err
			case n == 0:
				return "[no matches]\n", nil
			}
			return b.String(), nil
		}).Idempotent()
}

// isFile reports whether name is a file (true) or a directory (false).
func isFile(ctx *agent.Context, sb sandbox.Sandbox, name string) (bool, error) {
	st, err := sb.Stat(ctx, dirOr(name))
	if err != nil {
		return false, pathError(err)
	}
	return !st.IsDir(), nil
}

var errStop = errors.New("stop")

func dirOr(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// display is rel (a path under root) as the model should read it.
func display(root, rel string) string {
	if root == "" || root == "." {
		return rel
	}
	return path.Join(root, rel)
}

// walk calls f for every entry under root in sorted order, with its path
// relative to root, and at most maxWalk entries.
func walk(ctx *agent.Context, sb sandbox.Sandbox, root string, f func(rel string, dir bool) error) error {
	seen := 0
	var visit func(dir, rel string) error
	visit = func(dir, rel string) error {
		entries, err := sb.ReadDir(ctx, dir)
		if err != nil {
			return pathError(err)
		}
		for _, e := range entries {
			if seen++; seen > maxWalk {
				return fmt.Errorf("more than %d files and directories under %s: search a narrower path", maxWalk, dirOr(root))
			}
			r := path.Join(rel, e.Name())
			if err := f(r, e.IsDir()); err != nil {
				return err
			}
			if e.IsDir() {
				if err := visit(path.Join(dir, e.Name()), r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(dirOr(root), "")
}

// globSegments splits a glob into its path segments, checking each.
func globSegments(pattern string) ([]string, error) {
	pattern = strings.TrimPrefix(pattern, "./")
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	segs := strings.Split(pattern, "/")
	for _, s := range segs {
		if s == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
	}
	return segs, nil
}

// matchGlob matches path segments against glob segments, where ** stands
// for any number of directories.
func matchGlob(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchGlob(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
