package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/damperdev/damper/internal/wire"
)

// maxSafeInteger is the largest integer a Durable Object returns exactly (a
// JS number); both hosts refuse results beyond it.
const maxSafeInteger = 1<<53 - 1

// Store is one agent instance's SQLite database, held to the Durable
// Object's rules: a batch is one transaction, no statement may open, end
// or nest one, or reach another database, numbers bind as REAL and no
// integer beyond ±(2^53-1) comes back.
type Store struct {
	mu    sync.Mutex // one batch at a time
	db    *sql.DB
	conn  *sql.Conn // pinned: the authorizer is installed on this connection
	guest atomic.Bool
	// denied names what the authorizer last refused, for the error message.
	denied atomic.Pointer[string]
}

// OpenStore opens (creating) the database at path in WAL mode, or one in
// memory when path is "", which lives until Close.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	// _txlock=immediate makes BeginTx issue BEGIN IMMEDIATE: a batch takes
	// the write lock up front.
	dsn := "file::memory:?_txlock=immediate"
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		// A file: URI, escaped, so no character of the data directory's
		// path is taken for the start of the query.
		dsn = "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() +
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, conn: conn}
	// The lexical check in batch gives the clear error; the authorizer is
	// the guarantee, since SQLite itself classifies every statement it
	// compiles (including the second of "SELECT 1; COMMIT").
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("sqlite driver offers no authorizer")
		}
		return r.RegisterAuthorizer(s.authorize)
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// authorize refuses, in the guest's statements only, what a Durable Object
// refuses (transactions, savepoints, and other databases) and any use of
// the host's own tables.
func (s *Store) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	if !s.guest.Load() {
		return sqlite.AuthorizerOK
	}
	var what string
	switch {
	case action == sqlite.AuthTransaction || action == sqlite.AuthSavepoint:
		what = "transaction control (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE) is not allowed: a batch already runs as one transaction"
	case action == sqlite.AuthAttach || action == sqlite.AuthDetach:
		what = "ATTACH and DETACH are not allowed: an agent instance has one database"
	case hostTable(arg1) || hostTable(arg2):
		what = HostTablesMessage
	default:
		return sqlite.AuthorizerOK
	}
	s.denied.Store(&what)
	return sqlite.AuthorizerDeny
}

// Close closes the database.
func (s *Store) Close() error {
	s.conn.Close()
	return s.db.Close()
}

// host runs fn in one transaction of the host's own statements, which the
// guest's rules do not hold (the host's tables are the host's).
func (s *Store) host(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// read runs fn on the connection, outside a transaction, for the host's
// reads.
func (s *Store) read(fn func(q querier) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.conn)
}

// querier is what reads need of a connection or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Batch runs the statements in one BEGIN IMMEDIATE … COMMIT. Any failure
// rolls the whole batch back and names the failing statement's index.
func (s *Store) Batch(ctx context.Context, a wire.SQLArgs) (wire.SQLValue, *wire.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range a.Statements {
		if kw := transactionKeyword(st.SQL); kw != "" {
			return wire.SQLValue{}, sqlError(i, fmt.Errorf("%s is not allowed: a batch already runs as one transaction", kw))
		}
		if namesHostTable(st.SQL) {
			return wire.SQLValue{}, sqlError(i, errors.New(HostTablesMessage))
		}
	}
	tx, err := s.conn.BeginTx(ctx, nil)
	if err != nil {
		return wire.SQLValue{}, &wire.Error{Type: wire.ErrSQL, Message: fmt.Sprintf("begin: %v", err)}
	}
	out := wire.SQLValue{Results: make([]wire.StatementResult, 0, len(a.Statements))}
	s.denied.Store(nil)
	s.guest.Store(true)
	for i, st := range a.Statements {
		r, err := runStatement(ctx, tx, st)
		if err != nil {
			if what := s.denied.Load(); what != nil {
				err = errors.New(*what)
			}
			s.guest.Store(false)
			tx.Rollback()
			return wire.SQLValue{}, sqlError(i, err)
		}
		out.Results = append(out.Results, r)
	}
	s.guest.Store(false)
	if err := tx.Commit(); err != nil {
		return wire.SQLValue{}, &wire.Error{Type: wire.ErrSQL, Message: fmt.Sprintf("commit: %v", err)}
	}
	return out, nil
}

func sqlError(i int, err error) *wire.Error {
	return &wire.Error{Type: wire.ErrSQL, Message: fmt.Sprintf("statement %d: %v", i, err)}
}

func runStatement(ctx context.Context, tx *sql.Tx, st wire.Statement) (wire.StatementResult, error) {
	args := make([]any, len(st.Args))
	for i, v := range st.Args {
		b, err := bindArg(v)
		if err != nil {
			return wire.StatementResult{}, fmt.Errorf("arg %d: %w", i, err)
		}
		args[i] = b
	}
	rows, err := tx.QueryContext(ctx, st.SQL, args...)
	if err != nil {
		return wire.StatementResult{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return wire.StatementResult{}, err
	}
	r := wire.StatementResult{Columns: cols, Rows: [][]any{}}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return wire.StatementResult{}, err
		}
		for i, v := range vals {
			if vals[i], err = resultValue(v); err != nil {
				return wire.StatementResult{}, fmt.Errorf("column %q: %w", cols[i], err)
			}
		}
		r.Rows = append(r.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return wire.StatementResult{}, err
	}
	return r, nil
}

// bindArg turns a JSON argument into a SQLite value the way a Durable
// Object does, so the same SQL gives the same rows on both hosts: workerd
// binds every JavaScript number as REAL (measured: typeof(?) of 5 is
// "real"), and column affinity then stores a whole REAL in an INTEGER
// column as an integer. Booleans bind as 1.0/0.0, as the Workers host sends
// them.
func bindArg(v any) (any, error) {
	switch v := v.(type) {
	case nil, string:
		return v, nil
	case bool:
		if v {
			return 1.0, nil
		}
		return 0.0, nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", v, err)
		}
		return f, nil
	case float64:
		return v, nil
	}
	return nil, fmt.Errorf("%T is not null, a number, a string or a boolean", v)
}

// resultValue turns a SQLite value into JSON null, a number or a string.
func resultValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, string:
		return v, nil
	case int64:
		if v > maxSafeInteger || v < -maxSafeInteger {
			return nil, fmt.Errorf("integer %d is beyond ±(2^53-1), which a Durable Object cannot return exactly; store it as text", v)
		}
		return v, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%v is not a JSON number", v)
		}
		// workerd returns no type with a value, so it refuses any number
		// it cannot tell from a rounded integer; so does this host.
		if math.Abs(v) > maxSafeInteger && v == math.Trunc(v) {
			return nil, fmt.Errorf("number %v is beyond ±(2^53-1), which a Durable Object cannot return exactly; store it as text", v)
		}
		return v, nil
	case []byte:
		return nil, fmt.Errorf("BLOB values are not supported; store text")
	case time.Time:
		// The driver parses text in DATE/DATETIME/TIMESTAMP columns; give
		// the guest text back.
		return v.Format(time.RFC3339Nano), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

// transactionKeyword returns the statement's first keyword, upper-cased,
// when it opens, ends or nests a transaction ("" otherwise), skipping
// leading whitespace and comments as SQLite does.
func transactionKeyword(sql string) string {
	s := sql
	for {
		s = strings.TrimLeft(s, " \t\r\n\f\v;")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
			continue
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[2+i+2:]
			continue
		}
		break
	}
	end := 0
	for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
		end++
	}
	switch kw := strings.ToUpper(s[:end]); kw {
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		return kw
	}
	return ""
}
