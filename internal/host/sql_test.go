package host

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "agent", "id.sqlite"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// sqlBatch decodes args JSON as the sql effect does, and runs it.
func sqlBatch(t *testing.T, s *Store, args string) (wire.SQLValue, *wire.Error) {
	t.Helper()
	a, werr := decodeSQLArgs(json.RawMessage(args))
	require.Nil(t, werr)
	return s.Batch(context.Background(), a)
}

func mustBatch(t *testing.T, s *Store, args string) wire.SQLValue {
	t.Helper()
	v, werr := sqlBatch(t, s, args)
	require.Nil(t, werr)
	return v
}

func count(t *testing.T, s *Store) any {
	t.Helper()
	v := mustBatch(t, s, `{"statements":[{"sql":"SELECT count(*) FROM t"}]}`)
	return v.Results[0].Rows[0][0]
}

func TestSQLRefusesTransactionControl(t *testing.T) {
	s := openTestStore(t)
	mustBatch(t, s, `{"statements":[{"sql":"CREATE TABLE t(x)"}]}`)
	for _, sql := range []string{
		"BEGIN",
		"begin immediate",
		"  \n\tBeGiN TRANSACTION",
		"COMMIT",
		"end",
		"ROLLBACK",
		"SAVEPOINT sp",
		"savepoint sp",
		"RELEASE sp",
		"-- a comment\nBEGIN",
		"/* a comment */ SAVEPOINT x",
		"/* one */ -- two\n /* three */ commit",
		";BEGIN",
		// The first keyword is fine; SQLite's authorizer refuses the second
		// statement of the string.
		"SELECT 1; COMMIT",
		"INSERT INTO t VALUES (1); SAVEPOINT x",
	} {
		t.Run(sql, func(t *testing.T) {
			args, err := json.Marshal(wire.SQLArgs{Statements: []wire.Statement{
				{SQL: "INSERT INTO t VALUES (1)"},
				{SQL: sql},
			}})
			require.NoError(t, err)
			_, werr := sqlBatch(t, s, string(args))
			require.NotNil(t, werr, "%q must be refused", sql)
			assert.Equal(t, wire.ErrSQL, werr.Type)
			assert.Contains(t, werr.Message, "statement 1")
			assert.EqualValues(t, 0, count(t, s), "the batch must roll back")
		})
	}
}

func TestSQLAllowsKeywordsElsewhere(t *testing.T) {
	s := openTestStore(t)
	v := mustBatch(t, s, `{"statements":[
		{"sql":"CREATE TABLE t(x)"},
		{"sql":"CREATE TABLE \"begin\"(savepoint TEXT)"},
		{"sql":"INSERT INTO \"begin\" VALUES ('commit')"},
		{"sql":"-- BEGIN\nSELECT savepoint FROM \"begin\""}
	]}`)
	assert.Equal(t, [][]any{{"commit"}}, v.Results[3].Rows)
}

func TestSQLBatchIsAtomic(t *testing.T) {
	s := openTestStore(t)
	mustBatch(t, s, `{"statements":[{"sql":"CREATE TABLE t(x INTEGER UNIQUE)"}]}`)
	_, werr := sqlBatch(t, s, `{"statements":[
		{"sql":"INSERT INTO t VALUES (1)"},
		{"sql":"INSERT INTO t VALUES (2)"},
		{"sql":"INSERT INTO t VALUES (1)"}
	]}`)
	require.NotNil(t, werr)
	assert.Equal(t, wire.ErrSQL, werr.Type)
	assert.Contains(t, werr.Message, "statement 2")
	assert.EqualValues(t, 0, count(t, s))

	v := mustBatch(t, s, `{"statements":[
		{"sql":"INSERT INTO t VALUES (1)"},
		{"sql":"INSERT INTO t VALUES (2) RETURNING x"},
		{"sql":"SELECT x FROM t ORDER BY x"}
	]}`)
	require.Len(t, v.Results, 3)
	assert.Equal(t, wire.StatementResult{Columns: []string{}, Rows: [][]any{}}, v.Results[0])
	assert.Equal(t, [][]any{{int64(2)}}, v.Results[1].Rows)
	assert.Equal(t, []string{"x"}, v.Results[2].Columns)
	assert.Equal(t, [][]any{{int64(1)}, {int64(2)}}, v.Results[2].Rows)
}

func TestSQLBigIntegers(t *testing.T) {
	s := openTestStore(t)
	mustBatch(t, s, `{"statements":[{"sql":"CREATE TABLE t(x)"}]}`)
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"9007199254740991", true},
		{"-9007199254740991", true},
		{"9007199254740992", false},
		{"-9007199254740992", false},
		{"9223372036854775807", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			v, werr := sqlBatch(t, s, `{"statements":[
				{"sql":"INSERT INTO t VALUES (?)","args":[`+tc.value+`]},
				{"sql":"SELECT x FROM t WHERE x = ?","args":[`+tc.value+`]}
			]}`)
			if tc.ok {
				require.Nil(t, werr)
				assert.Equal(t, json.Number(tc.value).String(), jsonString(t, v.Results[1].Rows[0][0]))
				mustBatch(t, s, `{"statements":[{"sql":"DELETE FROM t"}]}`)
				return
			}
			require.NotNil(t, werr)
			assert.Equal(t, wire.ErrSQL, werr.Type)
			assert.Contains(t, werr.Message, "statement 1")
			assert.Contains(t, werr.Message, "store it as text")
			assert.EqualValues(t, 0, count(t, s), "the insert must roll back with the failing select")
		})
	}
	// As text, a big integer is fine.
	v := mustBatch(t, s, `{"statements":[{"sql":"SELECT CAST(? AS TEXT)","args":["9223372036854775807"]}]}`)
	assert.Equal(t, "9223372036854775807", v.Results[0].Rows[0][0])
}

func jsonString(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestSQLBindings(t *testing.T) {
	s := openTestStore(t)
	v := mustBatch(t, s, `{"statements":[
		{"sql":"SELECT ?, typeof(?), ?, typeof(?), ?, typeof(?), ?, typeof(?), ?, typeof(?), ?, typeof(?), ?/2",
		 "args":[true, true, false, false, 42, 42, 1.5, 1.5, "s", "s", null, null, 5]}
	]}`)
	// As on a Durable Object: numbers bind as REAL, so 5/2 is 2.5.
	assert.Equal(t, []any{
		1.0, "real", 0.0, "real", 42.0, "real",
		1.5, "real", "s", "text", nil, "null", 2.5,
	}, v.Results[0].Rows[0])
	// Column affinity stores a whole REAL in an INTEGER column as an integer.
	v = mustBatch(t, s, `{"statements":[
		{"sql":"CREATE TABLE n (i INTEGER)"},
		{"sql":"INSERT INTO n VALUES (?)","args":[7]},
		{"sql":"SELECT i, typeof(i) FROM n"}
	]}`)
	assert.Equal(t, []any{int64(7), "integer"}, v.Results[2].Rows[0])

	for _, args := range []string{`[[1]]`, `[{"a":1}]`} {
		_, werr := sqlBatch(t, s, `{"statements":[{"sql":"SELECT ?","args":`+args+`}]}`)
		require.NotNil(t, werr, args)
		assert.Equal(t, wire.ErrSQL, werr.Type)
		assert.Contains(t, werr.Message, "statement 0: arg 0")
	}
}

func TestSQLRefusesAttach(t *testing.T) {
	s := openTestStore(t)
	other := filepath.Join(t.TempDir(), "other.sqlite")
	args, err := json.Marshal(wire.SQLArgs{Statements: []wire.Statement{{SQL: "ATTACH DATABASE ? AS other", Args: []any{other}}}})
	require.NoError(t, err)
	_, werr := sqlBatch(t, s, string(args))
	require.NotNil(t, werr)
	assert.NoFileExists(t, other)
}

func TestTransactionKeyword(t *testing.T) {
	for sql, want := range map[string]string{
		"begin":                  "BEGIN",
		" /* x */ Rollback to a": "ROLLBACK",
		"-- only a comment":      "",
		"/* unterminated":        "",
		"SELECT 1":               "",
		"beginning":              "",
		"begin;":                 "BEGIN",
		"":                       "",
	} {
		assert.Equal(t, want, transactionKeyword(sql), "%q", sql)
	}
}
