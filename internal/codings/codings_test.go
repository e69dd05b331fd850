package codings

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cases are Content-Encoding field lines and what the rule makes of them:
// the codings listed (nil: none) or a parse error, and whether the body
// may be handed on as sent. Every spelling a server can use to slip an
// encoded body past a check that looks for one exact value is here.
var cases = []struct {
	name    string
	lines   []string
	codings []string
	bad     bool // not a list of tokens
	asSent  bool
}{
	{"no field", nil, nil, false, true},
	{"empty value", []string{""}, nil, false, true},
	{"identity", []string{"identity"}, nil, false, true},
	{"Identity", []string{"Identity"}, nil, false, true},
	{"identity twice", []string{"identity, identity"}, nil, false, true},
	{"empty members", []string{" , ,identity,"}, nil, false, true},
	{"gzip", []string{"gzip"}, []string{"gzip"}, false, false},
	{"GZIP", []string{"GZIP"}, []string{"gzip"}, false, false},
	{"Gzip", []string{"Gzip"}, []string{"gzip"}, false, false},
	{"x-gzip", []string{"x-gzip"}, []string{"x-gzip"}, false, false},
	{"deflate", []string{"deflate"}, []string{"deflate"}, false, false},
	{"br", []string{"br"}, []string{"br"}, false, false},
	{"zstd", []string{"zstd"}, []string{"zstd"}, false, false},
	{"compress", []string{"compress"}, []string{"compress"}, false, false},
	{"gzip, br", []string{"gzip, br"}, []string{"gzip", "br"}, false, false},
	{"gzip, gzip", []string{"gzip, gzip"}, []string{"gzip", "gzip"}, false, false},
	{"gzip then a line br", []string{"gzip", "br"}, []string{"gzip", "br"}, false, false},
	{"identity then a line gzip", []string{"identity", "gzip"}, []string{"gzip"}, false, false},
	{"identity, gzip", []string{"identity, gzip"}, []string{"gzip"}, false, false},
	{"gzip, identity", []string{"gzip, identity"}, []string{"gzip"}, false, false},
	{"tab around", []string{"\tgzip\t"}, []string{"gzip"}, false, false},
	{"empty line then gzip", []string{"", "gzip"}, []string{"gzip"}, false, false},
	{"parameter", []string{"gzip;q=1"}, nil, true, false},
	{"space inside", []string{"gz ip"}, nil, true, false},
	{"quoted", []string{`"gzip"`}, nil, true, false},
	{"nbsp around identity", []string{"\u00a0identity"}, nil, true, false},
	{"latin-1 byte", []string{"identit\xff"}, nil, true, false},
	{"semicolon after identity", []string{"identity;"}, nil, true, false},
	{"vertical tab", []string{"\videntity"}, nil, true, false},
}

func TestParse(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.lines)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.codings, got)
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tc.lines {
				h.Add("Content-Encoding", l)
			}
			err := Check(h)
			if tc.asSent {
				require.NoError(t, err)
				return
			}
			var ue *UnsupportedError
			require.True(t, errors.As(err, &ue), "want *UnsupportedError, got %v", err)
			// The message names what the server sent, every line of it.
			assert.Equal(t, strings.Join(tc.lines, ", "), ue.Value)
			assert.Contains(t, err.Error(), "refusing a response with Content-Encoding")
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases {
		f.Add(strings.Join(tc.lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		got, err := Parse(lines)
		h := http.Header{"Content-Encoding": lines}
		if err != nil {
			require.Error(t, Check(h), "a value that does not parse must be refused")
			return
		}
		for _, c := range got {
			require.True(t, isToken(c), "%q", c)
			require.Equal(t, strings.ToLower(c), c)
			require.NotEqual(t, "identity", c)
		}
		// The list is the list, however the lines were split.
		again, err := Parse([]string{strings.Join(got, ", ")})
		require.NoError(t, err)
		require.Equal(t, got, again)
		require.Equal(t, len(got) == 0, Check(h) == nil, "Check must accept exactly the lists with no coding")
	})
}

// The Workers host applies the same rule in JavaScript
// (worker/headers.js): it sees the field as Headers.get joins its lines,
// and must list the same codings and refuse the same values.
func TestParseMatchesTheWorker(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (Node.js >= 20) is required: it runs the Workers host's copy of the rule")
	js, err := filepath.Abs(filepath.Join("..", "..", "worker", "headers.js"))
	require.NoError(t, err)
	var joined []*string
	for _, tc := range cases {
		if tc.lines == nil {
			joined = append(joined, nil)
			continue
		}
		v := strings.Join(tc.lines, ", ")
		joined = append(joined, &v)
	}
	in, err := json.Marshal(joined)
	require.NoError(t, err)
	script := `const m = await import(process.argv[1]);
const out = JSON.parse(process.argv[2]).map((v) => ({
  codings: v === null ? [] : m.contentCodings(v), asSent: m.bodyAsSent(v), accept: m.ACCEPT_ENCODING }));
process.stdout.write(JSON.stringify(out));`
	out, err := exec.Command(node, "--input-type=module", "-e", script, "file://"+filepath.ToSlash(js), string(in)).Output()
	require.NoError(t, err)
	var got []struct {
		Codings *[]string `json:"codings"`
		AsSent  bool      `json:"asSent"`
		Accept  string    `json:"accept"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, len(cases))
	for i, tc := range cases {
		assert.Equal(t, AcceptEncoding, got[i].Accept)
		assert.Equal(t, tc.asSent, got[i].AsSent, "%s: bodyAsSent", tc.name)
		if tc.bad {
			assert.Nil(t, got[i].Codings, "%s: contentCodings must refuse it", tc.name)
			continue
		}
		require.NotNil(t, got[i].Codings, tc.name)
		want := tc.codings
		if want == nil {
			want = []string{}
		}
		assert.Equal(t, want, *got[i].Codings, tc.name)
	}
}
