//go:build !wasip1

package agenttest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/damperdev/damper/internal/wire"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// maxSafeInteger is the largest integer a Durable Object returns exactly.
const maxSafeInteger = 1<<53 - 1

// sql runs a batch of statements in one transaction against the agent
// instance's database, by the Durable Object's rules as both hosts
// enforce them.
func (h *Host) sql(ctx context.Context, instance string, stmts []wire.Statement) (*wire.SQLValue, error) {
	db, err := h.db(instance)
	if err != nil {
		return nil, &wire.Error{Type: wire.ErrSQL, Message: err.Error()}
	}
	for i, st := range stmts {
		if word := firstWord(st.SQL); transactionWords[word] {
			return nil, &wire.Error{Type: wire.ErrSQL, Message: fmt.Sprintf("statement %d: %s is not allowed: a batch is one transaction", i, word)}
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, &wire.Error{Type: wire.ErrSQL, Message: err.Error()}
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	v := &wire.SQLValue{Results: make([]wire.StatementResult, len(stmts))}
	for i, st := range stmts {
		r, err := query(ctx, tx, st)
		if err != nil {
			return nil, &wire.Error{Type: wire.ErrSQL, Message: fmt.Sprintf("statement %d: %v", i, err)}
		}
		v.Results[i] = *r
	}
	if err := tx.Commit(); err != nil {
		return nil, &wire.Error{Type: wire.ErrSQL, Message: err.Error()}
	}
	return v, nil
}

func (h *Host) db(instance string) (*sql.DB, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if db := h.dbs[instance]; db != nil {
		return db, nil
	}
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("open the database of %s: %w", instance, err)
	}
	// An in-memory database lives as long as its one connection.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	h.dbs[instance] = db
	return db, nil
}

var transactionWords = map[string]bool{
	"BEGIN": true, "COMMIT": true, "END": true, "ROLLBACK": true, "SAVEPOINT": true, "RELEASE": true,
}

// firstWord is the statement's first keyword, upper case, past blanks and
// comments.
func firstWord(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		switch {
		case strings.HasPrefix(s, "--"):
			_, s, _ = strings.Cut(s, "\n")
		case strings.HasPrefix(s, "/*"):
			_, s, _ = strings.Cut(s, "*/")
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
			})
			if end < 0 {
				end = len(s)
			}
			return strings.ToUpper(s[:end])
		}
	}
}

func query(ctx context.Context, tx *sql.Tx, st wire.Statement) (*wire.StatementResult, error) {
	args := make([]any, len(st.Args))
	for i, a := range st.Args {
		switch a := a.(type) {
		case bool: // bound as 0/1, as on a Durable Object
			args[i] = 0
			if a {
				args[i] = 1
			}
		case json.Number:
			if n, err := a.Int64(); err == nil {
				args[i] = n
			} else if f, err := a.Float64(); err == nil {
				args[i] = f
			} else {
				return nil, fmt.Errorf("argument %d: %v", i, err)
			}
		case nil, string:
			args[i] = a
		default:
			return nil, fmt.Errorf("argument %d: %T is not null, a number, a string or a boolean", i, a)
		}
	}
	rows, err := tx.QueryContext(ctx, st.SQL, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	r := &wire.StatementResult{Columns: cols, Rows: [][]any{}}
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range row {
			switch v := v.(type) {
			case int64:
				if v > maxSafeInteger || v < -maxSafeInteger {
					return nil, fmt.Errorf("column %s: integer %d is beyond ±(2^53-1): store it as text", cols[i], v)
				}
			case []byte:
				row[i] = string(v)
			case time.Time:
				row[i] = v.Format(time.RFC3339Nano)
			}
		}
		r.Rows = append(r.Rows, row)
	}
	return r, rows.Err()
}

// unmarshalNumbers decodes JSON keeping numbers exact, for SQL arguments.
func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
