// Package sandboxop carries the operations of the sandbox surface as data
// (JSON), with their errors as codes, so that a sandbox can be driven from
// the other side of a boundary: Serve performs a Request on a Sandbox, and
// Client is a Sandbox whose every method sends one. The probe agent of the
// end-to-end suite serves the empty kind this way; sandboxd and the
// container kind's client speak the same shapes.
package sandboxop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/damperdev/damper/sandbox"
)

// Operations.
const (
	OpReadFile  = "read_file"
	OpReadText  = "read_text"
	OpWriteFile = "write_file"
	OpStat      = "stat"
	OpReadDir   = "read_dir"
	OpExists    = "exists"
	OpMkdirAll  = "mkdir_all"
	OpRemoveAll = "remove_all"
	OpRename    = "rename"
	OpExec      = "exec"
	// OpOpen answers the sandbox's working directory (Response.Dir): the
	// remote kinds ask it when they open.
	OpOpen = "open"
)

// Request is one operation.
type Request struct {
	Op   string `json:"op"`
	Path string `json:"path,omitempty"`
	// To is Rename's new name.
	To   string `json:"to,omitempty"`
	Data []byte `json:"data,omitempty"`
	Cmd  *Cmd   `json:"cmd,omitempty"`
	// Stream asks an exec to answer at once with a stream Handle whose
	// bytes are the exec's Frames, one JSON line each, read with read
	// effects (the remote kinds, when Cmd has writers).
	Stream bool `json:"stream,omitempty"`
}

// Cmd is a sandbox.Cmd without its writers.
type Cmd struct {
	Script    string            `json:"script"`
	Dir       string            `json:"dir,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Stdin     string            `json:"stdin,omitempty"`
	TimeoutMs int64             `json:"timeout_ms,omitempty"`
	MaxOutput int               `json:"max_output,omitempty"`
}

// Response is an operation's outcome: Error, or what the operation returns.
type Response struct {
	Error   *Error  `json:"error,omitempty"`
	Data    []byte  `json:"data,omitempty"`
	Text    string  `json:"text,omitempty"`
	Info    *Info   `json:"info,omitempty"`
	Entries []Info  `json:"entries,omitempty"`
	Exists  bool    `json:"exists,omitempty"`
	Result  *Result `json:"result,omitempty"`
	Dir     string  `json:"dir,omitempty"`
	// Handle is a streamed exec's stream of Frames.
	Handle uint64 `json:"handle,omitempty"`
}

// Frame is one line (JSON) of a streamed exec: output as the command
// prints it, then, last, End with the Response of the whole exec (its
// Result holds all the output kept, as without streaming).
type Frame struct {
	Stdout []byte    `json:"stdout,omitempty"`
	Stderr []byte    `json:"stderr,omitempty"`
	End    *Response `json:"end,omitempty"`
}

// Result is a sandbox.Result whose output is bytes (base64 in JSON): a
// JSON string cannot carry output that is not UTF-8.
type Result struct {
	Stdout    []byte `json:"stdout,omitempty"`
	Stderr    []byte `json:"stderr,omitempty"`
	ExitCode  int    `json:"exit_code"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Info is a fs.FileInfo as data.
type Info struct {
	Name    string      `json:"name"`
	Size    int64       `json:"size"`
	Mode    fs.FileMode `json:"mode"`
	ModTime int64       `json:"mtime_ms"`
}

// Error is an error as data: Code names the sentinel it wraps.
type Error struct {
	Code    string `json:"code"`
	Op      string `json:"op,omitempty"`   // set for a *fs.PathError
	Path    string `json:"path,omitempty"` // set for a *fs.PathError
	Message string `json:"message"`        // the error's text (the wrapped error's, for a path error)
}

// codes pairs each code with its sentinel, most specific first: ErrEscape
// is also fs.ErrPermission, ErrNotText also fs.ErrInvalid.
var codes = []struct {
	code string
	err  error
}{
	{"escape", sandbox.ErrEscape},
	{"not_text", sandbox.ErrNotText},
	{"is_dir", sandbox.ErrIsDir},
	{"not_dir", sandbox.ErrNotDir},
	{"too_large", sandbox.ErrTooLarge},
	{"unavailable", sandbox.ErrUnavailable},
	{"unsupported", errors.ErrUnsupported},
	{"not_exist", fs.ErrNotExist},
	{"exist", fs.ErrExist},
	{"permission", fs.ErrPermission},
	{"invalid", fs.ErrInvalid},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

// EncodeError turns err into data; nil for nil.
func EncodeError(err error) *Error {
	if err == nil {
		return nil
	}
	e := &Error{Code: "other", Message: err.Error()}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			e.Code = c.code
			break
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		e.Op, e.Path, e.Message = pe.Op, pe.Path, pe.Err.Error()
	}
	return e
}

// Err turns the data back into an error that errors.Is finds the same
// sentinel in, and that reads the same: a *fs.PathError when it was one.
func (e *Error) Err() error {
	if e == nil {
		return nil
	}
	var inner error = &codedError{msg: e.Message}
	for _, c := range codes {
		if c.code == e.Code {
			inner = &codedError{msg: e.Message, is: c.err}
			break
		}
	}
	if e.Op != "" {
		return &fs.PathError{Op: e.Op, Path: e.Path, Err: inner}
	}
	return inner
}

type codedError struct {
	msg string
	is  error
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.is }

func infoOf(fi fs.FileInfo) Info {
	return Info{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime().UnixMilli()}
}

// Serve performs req on sb.
func Serve(ctx context.Context, sb sandbox.Sandbox, req Request) Response {
	var r Response
	var err error
	switch req.Op {
	case OpOpen:
		r.Dir = sb.Dir()
	case OpReadFile:
		r.Data, err = sb.ReadFile(ctx, req.Path)
	case OpReadText:
		r.Text, err = sb.ReadText(ctx, req.Path)
	case OpWriteFile:
		err = sb.WriteFile(ctx, req.Path, req.Data)
	case OpStat:
		var fi fs.FileInfo
		if fi, err = sb.Stat(ctx, req.Path); err == nil {
			in := infoOf(fi)
			r.Info = &in
		}
	case OpReadDir:
		var des []fs.DirEntry
		if des, err = sb.ReadDir(ctx, req.Path); err == nil {
			r.Entries = []Info{}
			for _, d := range des {
				fi, ierr := d.Info()
				if ierr != nil {
					err = ierr
					break
				}
				r.Entries = append(r.Entries, infoOf(fi))
			}
		}
	case OpExists:
		r.Exists, err = sb.Exists(ctx, req.Path)
	case OpMkdirAll:
		err = sb.MkdirAll(ctx, req.Path)
	case OpRemoveAll:
		err = sb.RemoveAll(ctx, req.Path)
	case OpRename:
		err = sb.Rename(ctx, req.Path, req.To)
	case OpExec:
		if req.Cmd == nil {
			err = fmt.Errorf("exec without a cmd: %w", fs.ErrInvalid)
			break
		}
		return ServeExec(ctx, sb, *req.Cmd, nil, nil)
	default:
		err = fmt.Errorf("unknown operation %q: %w", req.Op, fs.ErrInvalid)
	}
	r.Error = EncodeError(err)
	return r
}

// ServeExec runs cmd on sb, streaming its output to stdout and stderr
// when they are set, and returns the exec's Response.
func ServeExec(ctx context.Context, sb sandbox.Sandbox, cmd Cmd, stdout, stderr io.Writer) Response {
	res, err := sb.Exec(ctx, cmd.Sandbox(stdout, stderr))
	var r Response
	if res != nil {
		r.Result = ResultOf(res)
	}
	r.Error = EncodeError(err)
	return r
}

// Sandbox is c as a sandbox.Cmd with the given writers.
func (c Cmd) Sandbox(stdout, stderr io.Writer) sandbox.Cmd {
	return sandbox.Cmd{
		Script: c.Script, Dir: c.Dir, Env: c.Env, Stdin: c.Stdin,
		Timeout: time.Duration(c.TimeoutMs) * time.Millisecond, MaxOutput: c.MaxOutput,
		Stdout: stdout, Stderr: stderr,
	}
}

// CmdOf is cmd as data, without its writers.
func CmdOf(cmd sandbox.Cmd) Cmd {
	return Cmd{Script: cmd.Script, Dir: cmd.Dir, Env: cmd.Env, Stdin: cmd.Stdin, TimeoutMs: cmd.Timeout.Milliseconds(), MaxOutput: cmd.MaxOutput}
}

// ResultOf is res as data.
func ResultOf(res *sandbox.Result) *Result {
	return &Result{Stdout: []byte(res.Stdout), Stderr: []byte(res.Stderr), ExitCode: res.ExitCode, TimedOut: res.TimedOut, Truncated: res.Truncated}
}

// Sandbox is r as a *sandbox.Result.
func (r *Result) Sandbox() *sandbox.Result {
	return &sandbox.Result{Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode, TimedOut: r.TimedOut, Truncated: r.Truncated}
}

// Client is a Sandbox of the given kind and working directory whose
// every method is one call of send. It cannot stream: Cmd.Stdout and
// Cmd.Stderr get the whole output once the command has ended.
func Client(kind sandbox.Kind, dir string, send func(ctx context.Context, req Request) (Response, error)) sandbox.Sandbox {
	return &client{kind: kind, dir: dir, send: send}
}

type client struct {
	kind sandbox.Kind
	dir  string
	send func(ctx context.Context, req Request) (Response, error)
}

func (c *client) Kind() sandbox.Kind { return c.kind }
func (c *client) Dir() string        { return c.dir }

func (c *client) do(ctx context.Context, req Request) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	r, err := c.send(ctx, req)
	if err != nil {
		return r, err
	}
	return r, r.Error.Err()
}

func (c *client) ReadFile(ctx context.Context, name string) ([]byte, error) {
	r, err := c.do(ctx, Request{Op: OpReadFile, Path: name})
	if err != nil {
		return nil, err
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r.Data, nil
}

func (c *client) ReadText(ctx context.Context, name string) (string, error) {
	r, err := c.do(ctx, Request{Op: OpReadText, Path: name})
	return r.Text, err
}

func (c *client) WriteFile(ctx context.Context, name string, data []byte) error {
	_, err := c.do(ctx, Request{Op: OpWriteFile, Path: name, Data: data})
	return err
}

func (c *client) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	r, err := c.do(ctx, Request{Op: OpStat, Path: name})
	if err != nil {
		return nil, err
	}
	if r.Info == nil {
		return nil, errors.New("stat: no info in the response")
	}
	return fileInfo{*r.Info}, nil
}

func (c *client) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	r, err := c.do(ctx, Request{Op: OpReadDir, Path: name})
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(r.Entries))
	for i, in := range r.Entries {
		out[i] = fs.FileInfoToDirEntry(fileInfo{in})
	}
	return out, nil
}

func (c *client) Exists(ctx context.Context, name string) (bool, error) {
	r, err := c.do(ctx, Request{Op: OpExists, Path: name})
	return r.Exists, err
}

func (c *client) MkdirAll(ctx context.Context, name string) error {
	_, err := c.do(ctx, Request{Op: OpMkdirAll, Path: name})
	return err
}

func (c *client) RemoveAll(ctx context.Context, name string) error {
	_, err := c.do(ctx, Request{Op: OpRemoveAll, Path: name})
	return err
}

func (c *client) Rename(ctx context.Context, oldname, newname string) error {
	_, err := c.do(ctx, Request{Op: OpRename, Path: oldname, To: newname})
	return err
}

func (c *client) Exec(ctx context.Context, cmd sandbox.Cmd) (*sandbox.Result, error) {
	wire := CmdOf(cmd)
	r, err := c.do(ctx, Request{Op: OpExec, Cmd: &wire})
	if r.Result == nil {
		return nil, err
	}
	res := r.Result.Sandbox()
	if cmd.Stdout != nil && res.Stdout != "" {
		if _, werr := cmd.Stdout.Write(r.Result.Stdout); werr != nil && err == nil {
			err = fmt.Errorf("stream stdout: %w", werr)
		}
	}
	if cmd.Stderr != nil && res.Stderr != "" {
		if _, werr := cmd.Stderr.Write(r.Result.Stderr); werr != nil && err == nil {
			err = fmt.Errorf("stream stderr: %w", werr)
		}
	}
	return res, err
}

// fileInfo is an Info as a fs.FileInfo.
type fileInfo struct{ in Info }

func (f fileInfo) Name() string       { return f.in.Name }
func (f fileInfo) Size() int64        { return f.in.Size }
func (f fileInfo) Mode() fs.FileMode  { return f.in.Mode }
func (f fileInfo) ModTime() time.Time { return time.UnixMilli(f.in.ModTime) }
func (f fileInfo) IsDir() bool        { return f.in.Mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }
