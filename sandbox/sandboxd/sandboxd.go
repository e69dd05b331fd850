// Package sandboxd is the server of the container kind, and its client:
// a sandbox's file operations and shell over HTTP, in a container (an
// image built from build/container/Dockerfile, on Cloudflare Containers)
// or in a child process of the local host.
//
// The protocol is JSON, the shapes of the sandbox surface as data
// (internal/sandboxop), so the Workers host speaks it from JavaScript:
//
//	GET  /health   {"status":"ok","dir":"/workspace"}
//	POST /op       a Request ({"op":"read_file","path":"a.txt"}, …)  ->  a Response
//	POST /exec     a Cmd ({"script":"ls","timeout_ms":1000})          ->  application/x-ndjson:
//	               one Frame a line, {"stdout":…} and {"stderr":…} (base64) as the
//	               command prints, then {"end":Response}
//
// An error is a Response with "error" ({"code":"escape","op":"read",
// "path":"../x","message":"path escapes the sandbox"}), with status 200:
// the status is not an error channel, so a proxy's failure (any other
// status, or an exec stream without its end) is never mistaken for the
// sandbox's answer.
package sandboxd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/sandbox"
)

// MaxRequest bounds a request body: a WriteFile's data travels as base64
// inside it.
const MaxRequest = 64 << 20

// Handler serves sb.
func Handler(sb sandbox.Sandbox) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok", "dir": sb.Dir()})
	})
	mux.HandleFunc("POST /op", func(w http.ResponseWriter, r *http.Request) {
		var req sandboxop.Request
		if !decode(w, r, &req) {
			return
		}
		writeJSON(w, sandboxop.Serve(r.Context(), sb, req))
	})
	mux.HandleFunc("POST /exec", func(w http.ResponseWriter, r *http.Request) {
		var cmd sandboxop.Cmd
		if !decode(w, r, &cmd) {
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		var flush func()
		if f, ok := w.(http.Flusher); ok {
			flush = f.Flush
		}
		fw := sandboxop.NewFrameWriter(w, flush)
		resp := sandboxop.ServeExec(r.Context(), sb, cmd, fw.Output(false), fw.Output(true))
		fw.Frame(sandboxop.Frame{End: &resp})
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequest))
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"error":{"type":"bad_request","message":%q}}`, err.Error()), http.StatusRequestEntityTooLarge)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		http.Error(w, fmt.Sprintf(`{"error":{"type":"bad_request","message":%q}}`, "malformed JSON: "+err.Error()), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// ErrLost is the error of an operation whose sandboxd went away before it
// answered: killed, crashed, or its container stopped. The operation may
// have happened in part.
var ErrLost = errors.New("sandboxd went away before it answered")

// Client is a sandbox.Sandbox served by a sandboxd at a base URL.
type Client struct {
	base string
	hc   *http.Client
	kind sandbox.Kind
	dir  string
}

// Dial returns a client of the sandboxd at base ("http://host:port", or
// any base hc can reach: a unix socket through its transport), asking it
// for its working directory.
func Dial(ctx context.Context, base string, hc *http.Client, kind sandbox.Kind) (*Client, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: strings.TrimSuffix(base, "/"), hc: hc, kind: kind}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandboxd health: %w", err)
	}
	defer resp.Body.Close()
	var h struct{ Status, Dir string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Dir == "" {
		return nil, fmt.Errorf("sandboxd health: status %d, %v", resp.StatusCode, err)
	}
	c.dir = h.Dir
	return c, nil
}

// Kind implements sandbox.Sandbox.
func (c *Client) Kind() sandbox.Kind { return c.kind }

// Dir implements sandbox.Sandbox.
func (c *Client) Dir() string { return c.dir }

// Do performs one operation (anything but a streamed exec) and returns
// sandboxd's Response; its Error is the operation's, the error returned
// is the transport's (wrapping ErrLost when sandboxd went away).
func (c *Client) Do(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
	var r sandboxop.Response
	body, err := json.Marshal(req)
	if err != nil {
		return r, err
	}
	resp, err := c.post(ctx, "/op", body)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, c.lost(ctx, "read the answer", err)
	}
	return r, nil
}

func (c *Client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.lost(ctx, "POST "+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("sandboxd POST %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, nil
}

func (c *Client) lost(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sandboxd %s: %w", what, ctx.Err())
	}
	return fmt.Errorf("sandboxd %s: %w: %w", what, ErrLost, err)
}

// Exec runs cmd, calling onFrame, in the calling goroutine, for each
// frame of output as sandboxd streams it, and returns the exec's
// Response. A stream that ends before its last frame is ErrLost.
func (c *Client) ExecFrames(ctx context.Context, cmd sandboxop.Cmd, onFrame func(sandboxop.Frame) error) (sandboxop.Response, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return sandboxop.Response{}, err
	}
	resp, err := c.post(ctx, "/exec", body)
	if err != nil {
		return sandboxop.Response{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8*MaxRequest)
	var ferr error
	for sc.Scan() {
		var fr sandboxop.Frame
		if err := json.Unmarshal(sc.Bytes(), &fr); err != nil {
			return sandboxop.Response{}, fmt.Errorf("sandboxd exec: malformed frame: %w", err)
		}
		if fr.End != nil {
			return *fr.End, ferr
		}
		if onFrame != nil && ferr == nil {
			ferr = onFrame(fr)
		}
	}
	err = sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return sandboxop.Response{}, c.lost(ctx, "exec", err)
}

// ExecStream starts cmd and returns its stream of Frames as sandboxd
// sends it (one JSON line each, the last an End); the caller closes it.
func (c *Client) ExecStream(ctx context.Context, cmd sandboxop.Cmd) (io.ReadCloser, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	resp, err := c.post(ctx, "/exec", body)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) do(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
	if err := ctx.Err(); err != nil {
		return sandboxop.Response{}, err
	}
	r, err := c.Do(ctx, req)
	if err != nil {
		return r, err
	}
	return r, r.Error.Err()
}

// ReadFile implements sandbox.FS.
func (c *Client) ReadFile(ctx context.Context, name string) ([]byte, error) {
	r, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpReadFile, Path: name})
	if err != nil {
		return nil, err
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r.Data, nil
}

// ReadText implements sandbox.FS.
func (c *Client) ReadText(ctx context.Context, name string) (string, error) {
	r, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpReadText, Path: name})
	return r.Text, err
}

// WriteFile implements sandbox.FS.
func (c *Client) WriteFile(ctx context.Context, name string, data []byte) error {
	_, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpWriteFile, Path: name, Data: data})
	return err
}

// Stat implements sandbox.FS.
func (c *Client) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	return c.via(ctx).Stat(ctx, name)
}

// ReadDir implements sandbox.FS.
func (c *Client) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	return c.via(ctx).ReadDir(ctx, name)
}

// Exists implements sandbox.FS.
func (c *Client) Exists(ctx context.Context, name string) (bool, error) {
	r, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpExists, Path: name})
	return r.Exists, err
}

// MkdirAll implements sandbox.FS.
func (c *Client) MkdirAll(ctx context.Context, name string) error {
	_, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpMkdirAll, Path: name})
	return err
}

// RemoveAll implements sandbox.FS.
func (c *Client) RemoveAll(ctx context.Context, name string) error {
	_, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpRemoveAll, Path: name})
	return err
}

// Rename implements sandbox.FS.
func (c *Client) Rename(ctx context.Context, oldname, newname string) error {
	_, err := c.do(ctx, sandboxop.Request{Op: sandboxop.OpRename, Path: oldname, To: newname})
	return err
}

// via is the sandboxop client over c, for the operations whose answers it
// turns back into Go values.
func (c *Client) via(ctx context.Context) sandbox.Sandbox {
	return sandboxop.Client(c.kind, c.dir, c.Do)
}

// Exec implements sandbox.Shell, streaming the output to cmd's writers
// as sandboxd sends it.
func (c *Client) Exec(ctx context.Context, cmd sandbox.Cmd) (*sandbox.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var werr error
	r, err := c.ExecFrames(ctx, sandboxop.CmdOf(cmd), func(fr sandboxop.Frame) error {
		if len(fr.Stdout) > 0 && cmd.Stdout != nil && werr == nil {
			if _, err := cmd.Stdout.Write(fr.Stdout); err != nil {
				werr = fmt.Errorf("exec: stream stdout: %w", err)
			}
		}
		if len(fr.Stderr) > 0 && cmd.Stderr != nil && werr == nil {
			if _, err := cmd.Stderr.Write(fr.Stderr); err != nil {
				werr = fmt.Errorf("exec: stream stderr: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var res *sandbox.Result
	if r.Result != nil {
		res = r.Result.Sandbox()
	}
	if e := r.Error.Err(); e != nil {
		return res, e
	}
	return res, werr
}
