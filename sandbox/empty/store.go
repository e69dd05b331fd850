package empty

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

// Storage: one row per directory, one row per piece of a file
// (_damper_sandbox_files, runtime/internal/store's migration 3).
const (
	pieceSize = 512 << 10 // bytes of a file per row, far below the Durable Object's 2 MB a row
	pageSize  = 4 << 20   // about how many bytes one query of the load returns
)

// state is the sandbox of one agent instance in this module instance: its
// files in memory, and how they reach storage.
type state struct {
	work, tmp *memfs.FS
	store     *sqlStore // nil: memory only

	// Guarded by mu, never held across an effect (a goroutine blocked on
	// it would count as running, and the run would stall).
	mu     sync.Mutex
	loaded bool
	// inflight are the paths of batches sent and not yet known to be
	// stored, by batch number: a later batch sends them again, so that
	// whichever of two concurrent batches the host runs last, storage
	// ends with what memory holds.
	inflight map[int64][]string
}

func newState(l memfs.Limits, store *sqlStore) *state {
	if store != nil {
		store.owner = newOwner()
	}
	return &state{work: memfs.New(l), tmp: memfs.New(l), store: store, loaded: store == nil, inflight: map[int64][]string{}}
}

func (s *state) setLimits(l memfs.Limits) {
	s.work.SetLimits(l)
	s.tmp.SetLimits(l)
}

// dir resolves Cmd.Dir: the working directory, or a directory in it or in
// /tmp.
func (s *state) dir(name string) (string, error) {
	if name == "" {
		return Dir, nil
	}
	abs := name
	if !strings.HasPrefix(abs, "/") {
		abs = Dir + "/" + abs
	}
	abs = path.Clean(abs)
	var fsys *memfs.FS
	var rel string
	switch {
	case abs == Dir || abs == tmpDir:
		return abs, nil
	case strings.HasPrefix(abs, Dir+"/"):
		fsys, rel = s.work, abs[len(Dir)+1:]
	case strings.HasPrefix(abs, tmpDir+"/"):
		fsys, rel = s.tmp, abs[len(tmpDir)+1:]
	default:
		return "", &fs.PathError{Op: "chdir", Path: name, Err: sandbox.ErrEscape}
	}
	in, err := fsys.Stat(rel)
	if err != nil {
		return "", memfs.Relabel(err, name)
	}
	if !in.IsDir() {
		return "", &fs.PathError{Op: "chdir", Path: name, Err: sandbox.ErrNotDir}
	}
	return abs, nil
}

// ensureLoaded loads the files from storage unless this module instance
// has them.
func (s *state) ensureLoaded(ctx context.Context) error {
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if loaded {
		return nil
	}
	entries, seq, err := s.store.load(ctx)
	if err != nil {
		return fmt.Errorf("empty sandbox: load the files: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded { // another goroutine of the run loaded them meanwhile
		return nil
	}
	if err := s.work.Load(entries); err != nil {
		return fmt.Errorf("empty sandbox: load the files: %w", err)
	}
	s.store.seq = seq
	s.loaded = true
	return nil
}

// commit writes what changed in the working directory since the last
// commit, in one atomic batch.
func (s *state) commit(ctx context.Context) error {
	s.tmp.TakeChanges() // /tmp is never stored
	if s.store == nil {
		s.work.TakeChanges()
		return nil
	}
	s.mu.Lock()
	changed := s.work.TakeChanges()
	if len(changed) == 0 {
		s.mu.Unlock()
		return nil
	}
	paths := map[string]bool{}
	for _, p := range changed {
		paths[p] = true
	}
	for _, ps := range s.inflight {
		for _, p := range ps {
			paths[p] = true
		}
	}
	s.store.seq++
	seq := s.store.seq
	s.inflight[seq] = changed
	stmts := s.store.batch(s.work, seq, paths)
	s.mu.Unlock()

	err := s.store.write(ctx, stmts, seq)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		for k := range s.inflight {
			if k <= seq {
				delete(s.inflight, k)
			}
		}
		return nil
	}
	// What storage holds is unknown: drop the copy in memory, so the next
	// operation loads what was stored.
	s.loaded = false
	clear(s.inflight)
	return fmt.Errorf("empty sandbox: store the changed files: %w", err)
}

// sqlStore keeps an agent instance's files in its database.
type sqlStore struct {
	key   string
	owner string // this module instance's claim on the files
	seq   int64  // the number of the last batch sent
}

// errStolen is storage claimed by another module instance since this one
// loaded the files.
var errStolen = errors.New("another module instance loaded the files since this one did: reopen the sandbox")

func newOwner() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pageQuery reads the rows after (path, part), about pageSize bytes of
// them, with the running total that tells whether more remain.
const pageQuery = `SELECT path, part, dir, mode, mtime, data, b64, upto FROM (
	SELECT path, part, dir, mode, mtime, data, b64,
		SUM(length(data)) OVER (ORDER BY path, part) AS upto
	FROM _damper_sandbox_files WHERE path > ? OR (path = ? AND part > ?)
) WHERE upto - length(data) < ? ORDER BY path, part LIMIT ?`

const pageRows = 5000

// load claims the files for this module instance and reads them: one
// round trip for the claim and the first page, one more per further page.
func (st *sqlStore) load(ctx context.Context) ([]memfs.Entry, int64, error) {
	page := func(afterPath string, afterPart float64) wire.Statement {
		return wire.Statement{SQL: pageQuery, Args: []any{afterPath, afterPath, afterPart, pageSize, pageRows}}
	}
	rs, err := instance.Exec(ctx,
		wire.Statement{SQL: `UPDATE _damper_sandbox_owner SET owner = ? WHERE id = 1 RETURNING seq`, Args: []any{st.owner}},
		page("", -1),
	)
	if err != nil {
		return nil, 0, err
	}
	if len(rs[0].Rows) != 1 {
		return nil, 0, errors.New("the sandbox's owner row is missing")
	}
	seq, ok := rs[0].Rows[0][0].(float64)
	if !ok {
		return nil, 0, fmt.Errorf("the sandbox's sequence is %T, not a number", rs[0].Rows[0][0])
	}
	var entries []memfs.Entry
	var cur *memfs.Entry
	rows := rs[1].Rows
	for {
		afterPath, afterPart, upto := "", -1.0, 0.0
		for _, row := range rows {
			if len(row) != 8 {
				return nil, 0, fmt.Errorf("a file row has %d columns, want 8", len(row))
			}
			e, part, err := decodeRow(row[:7])
			if err != nil {
				return nil, 0, err
			}
			if part > 0 && cur != nil && cur.Path == e.Path {
				cur.Data = append(cur.Data, e.Data...)
			} else {
				entries = append(entries, e)
				cur = &entries[len(entries)-1]
			}
			afterPath, afterPart = e.Path, float64(part)
			upto, _ = row[7].(float64)
		}
		// A page ends early only at the end of the table: short of both
		// the row limit and the size budget.
		if len(rows) < pageRows && upto < pageSize {
			break
		}
		rs, err := instance.Exec(ctx, page(afterPath, afterPart))
		if err != nil {
			return nil, 0, err
		}
		rows = rs[0].Rows
		if len(rows) == 0 {
			break
		}
	}
	return entries, int64(seq), nil
}

func decodeRow(row []any) (memfs.Entry, int, error) {
	if len(row) != 7 {
		return memfs.Entry{}, 0, fmt.Errorf("a file row has %d columns, want 7", len(row))
	}
	p, ok1 := row[0].(string)
	part, ok2 := row[1].(float64)
	dir, ok3 := row[2].(float64)
	mode, ok4 := row[3].(float64)
	mtime, ok5 := row[4].(float64)
	data, ok6 := row[5].(string)
	b64, ok7 := row[6].(float64)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return memfs.Entry{}, 0, fmt.Errorf("a file row has unexpected types: %v", row)
	}
	e := memfs.Entry{Path: p, Dir: dir != 0, Mode: fs.FileMode(mode), MTime: time.UnixMilli(int64(mtime))}
	if b64 != 0 {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return e, 0, fmt.Errorf("file %s: %w", p, err)
		}
		e.Data = b
	} else {
		e.Data = []byte(data)
	}
	return e, int(part), nil
}

// batch builds the statements that store the current state of paths:
// first a guard that fails the batch unless this module instance still
// owns the files and no later batch was stored, then each path's rows.
func (st *sqlStore) batch(work *memfs.FS, seq int64, paths map[string]bool) []wire.Statement {
	stmts := []wire.Statement{
		// A duplicate id fails the batch, which then changes nothing.
		{SQL: `INSERT INTO _damper_sandbox_owner (id, owner, seq)
			SELECT 1, '', 0 WHERE NOT EXISTS (SELECT 1 FROM _damper_sandbox_owner WHERE id = 1 AND owner = ? AND seq < ?)`,
			Args: []any{st.owner, seq}},
		{SQL: `UPDATE _damper_sandbox_owner SET seq = ? WHERE id = 1`, Args: []any{seq}},
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	slices.Sort(sorted) // a parent before what it holds
	var gone []string   // removed paths whose parent was removed too are covered by it
	for _, p := range sorted {
		e, ok := work.Get(p)
		if !ok {
			if len(gone) > 0 && strings.HasPrefix(p, gone[len(gone)-1]+"/") {
				continue
			}
			gone = append(gone, p)
			stmts = append(stmts, wire.Statement{
				SQL:  `DELETE FROM _damper_sandbox_files WHERE path = ? OR (path > ? AND path < ?)`,
				Args: []any{p, p + "/", p + "0"}, // "0" follows "/": the range is p's subtree
			})
			continue
		}
		stmts = append(stmts, wire.Statement{SQL: `DELETE FROM _damper_sandbox_files WHERE path = ?`, Args: []any{p}})
		dir := 0
		if e.Dir {
			dir = 1
		}
		pieces := split(e.Data)
		if e.Dir || len(pieces) == 0 {
			pieces = []piece{{}}
		}
		for i, pc := range pieces {
			stmts = append(stmts, wire.Statement{
				SQL:  `INSERT INTO _damper_sandbox_files (path, part, dir, mode, mtime, data, b64) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				Args: []any{p, i, dir, int64(e.Mode), e.MTime.UnixMilli(), pc.data, pc.b64},
			})
		}
	}
	return stmts
}

// write sends a batch. A failed batch that a later one overtook is not a
// failure: the later one stored these paths too.
func (st *sqlStore) write(ctx context.Context, stmts []wire.Statement, seq int64) error {
	_, err := instance.Exec(ctx, stmts...)
	if err == nil {
		return nil
	}
	rs, qerr := instance.Exec(context.WithoutCancel(ctx), wire.Statement{SQL: `SELECT owner, seq FROM _damper_sandbox_owner WHERE id = 1`})
	if qerr != nil || len(rs[0].Rows) != 1 {
		return err
	}
	owner, _ := rs[0].Rows[0][0].(string)
	stored, _ := rs[0].Rows[0][1].(float64)
	switch {
	case owner != st.owner:
		return errStolen
	case int64(stored) >= seq:
		return nil
	}
	return err
}

type piece struct {
	data string
	b64  int
}

// split cuts data into pieces of at most pieceSize bytes, on rune
// boundaries, each stored as text when it is UTF-8 without NUL and as
// base64 otherwise.
func split(data []byte) []piece {
	var out []piece
	for len(data) > 0 {
		n := min(len(data), pieceSize)
		if n < len(data) {
			for k := 0; k < utf8.UTFMax && n > 1 && !utf8.RuneStart(data[n]); k++ {
				n--
			}
		}
		chunk := data[:n]
		data = data[n:]
		if utf8.Valid(chunk) && !strings.Contains(string(chunk), "\x00") {
			out = append(out, piece{data: string(chunk)})
		} else {
			out = append(out, piece{data: base64.StdEncoding.EncodeToString(chunk), b64: 1})
		}
	}
	return out
}
