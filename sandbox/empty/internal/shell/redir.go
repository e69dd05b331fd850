package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// redirect applies rds to r's descriptors and returns what puts them back;
// false when one failed (its message printed), with nothing applied.
func (r *Runner) redirect(rds []*syntax.Redirect) (func(), bool) {
	saved := r.fds
	for _, rd := range rds {
		if msg := r.redirectOne(rd); msg != "" {
			r.fds = saved
			r.errf("%s", msg)
			return nil, false
		}
	}
	return func() { r.fds = saved }, true
}

// redirectOne applies rd, or returns why it could not.
func (r *Runner) redirectOne(rd *syntax.Redirect) string {
	n := 1
	switch rd.Op {
	case syntax.RdrIn, syntax.RdrInOut, syntax.DplIn, syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
		n = 0
	}
	if rd.N != nil {
		v, err := strconv.Atoi(rd.N.Value)
		if err != nil || v < 0 || v >= len(r.fds) {
			return fmt.Sprintf("%s: bad file descriptor", rd.N.Value)
		}
		n = v
	}
	switch rd.Op {
	case syntax.Hdoc, syntax.DashHdoc:
		r.fds[n] = &fd{r: strings.NewReader(r.hdoc(rd))}
		return ""
	case syntax.WordHdoc:
		r.fds[n] = &fd{r: strings.NewReader(r.literal(rd.Word) + "\n")}
		return ""
	}
	arg := r.literal(rd.Word)
	switch rd.Op {
	case syntax.DplOut, syntax.DplIn:
		if arg == "-" {
			r.fds[n] = nil
			return ""
		}
		if m, err := strconv.Atoi(arg); err == nil {
			if m < 0 || m >= len(r.fds) || r.fds[m] == nil {
				return fmt.Sprintf("%s: Bad file descriptor", arg)
			}
			r.fds[n] = r.fds[m]
			return ""
		}
		if rd.Op == syntax.DplIn {
			return fmt.Sprintf("%s: ambiguous redirect", arg)
		}
		// >& file is &> file.
		w, msg := r.openWrite(arg, false, false)
		if msg != "" {
			return msg
		}
		r.fds[1], r.fds[2] = &fd{w: w}, &fd{w: w}
		return ""
	case syntax.RdrIn, syntax.RdrInOut:
		rd, msg := r.openRead(arg, rd.Op == syntax.RdrInOut)
		if msg != "" {
			return msg
		}
		r.fds[n] = &fd{r: rd}
		return ""
	case syntax.RdrOut, syntax.RdrClob, syntax.AppOut:
		w, msg := r.openWrite(arg, rd.Op == syntax.AppOut, rd.Op == syntax.RdrOut && r.opts.noclobber)
		if msg != "" {
			return msg
		}
		r.fds[n] = &fd{w: w}
		return ""
	case syntax.RdrAll, syntax.AppAll:
		w, msg := r.openWrite(arg, rd.Op == syntax.AppAll, false)
		if msg != "" {
			return msg
		}
		r.fds[1], r.fds[2] = &fd{w: w}, &fd{w: w}
		return ""
	}
	return fmt.Sprintf("unsupported redirection %s", rd.Op)
}

// openRead opens name for reading, as < does.
func (r *Runner) openRead(name string, create bool) (io.Reader, string) {
	t, err := r.resolve(name)
	if err != nil {
		return nil, fmt.Sprintf("%s: %s", name, errText(err))
	}
	switch t.dev {
	case "":
	case "stdin":
		return r.stdin(), ""
	case "zero", "urandom", "random":
		b, _ := r.readN(name, deviceRead)
		return bytes.NewReader(b), ""
	default:
		return strings.NewReader(""), ""
	}
	b, err := t.fs.ReadFile(t.rel)
	if err != nil && create && isNotExist(err) {
		if werr := t.fs.WriteFile(t.rel, nil); werr == nil {
			return strings.NewReader(""), ""
		}
	}
	if err != nil {
		return nil, fmt.Sprintf("%s: %s", name, errText(err))
	}
	return bytes.NewReader(b), ""
}

// openWrite opens name for writing, as > and >> do.
func (r *Runner) openWrite(name string, app, noclobber bool) (io.Writer, string) {
	t, err := r.resolve(name)
	if err != nil {
		return nil, fmt.Sprintf("%s: %s", name, errText(err))
	}
	switch t.dev {
	case "":
	case "stdout":
		return r.stdout(), ""
	case "stderr":
		return r.stderr(), ""
	default:
		return io.Discard, ""
	}
	if noclobber {
		if _, err := t.fs.Stat(t.rel); err == nil {
			return nil, fmt.Sprintf("%s: cannot overwrite existing file", name)
		}
	}
	w, err := t.fs.Create(t.rel, app)
	if err != nil {
		return nil, fmt.Sprintf("%s: %s", name, errText(err))
	}
	return w, ""
}

// hdoc is the body of a here-document: expanded unless its delimiter is
// quoted, with leading tabs removed for <<-.
func (r *Runner) hdoc(rd *syntax.Redirect) string {
	if rd.Hdoc == nil {
		return ""
	}
	quoted := false
	for _, p := range rd.Word.Parts {
		switch p := p.(type) {
		case *syntax.SglQuoted, *syntax.DblQuoted:
			quoted = true
		case *syntax.Lit:
			if strings.Contains(p.Value, `\`) {
				quoted = true
			}
		}
	}
	var body string
	if quoted {
		var b []byte
		for _, p := range rd.Hdoc.Parts {
			if lit, ok := p.(*syntax.Lit); ok {
				b = append(b, lit.Value...)
			}
		}
		body = string(b)
	} else {
		body = r.document(rd.Hdoc)
	}
	if rd.Op == syntax.DashHdoc {
		lines := strings.SplitAfter(body, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimLeft(l, "\t")
		}
		body = strings.Join(lines, "")
	}
	return body
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
