package harness

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSkill(t *testing.T) {
	for _, tc := range []struct {
		name, dir, text string
		want            SkillInfo
		body, err       string
	}{
		{name: "minimal", dir: "pdf", text: "---\nname: pdf\ndescription: Reads PDFs.\n---\nSteps.\n",
			want: SkillInfo{Name: "pdf", Description: "Reads PDFs."}, body: "Steps.\n"},
		{name: "every field", dir: "data-tools", text: "---\n# a comment\nname: data-tools\ndescription: \"Cleans CSV files: quotes, \\\"escapes\\\".\"\nlicense: 'Apache-2.0'\ncompatibility: Needs python3 # and pandas\nmetadata:\n  author: example-org\n  version: \"1.0\"\nallowed-tools: Bash(git:*) Read\n---\n\nBody.",
			want: SkillInfo{Name: "data-tools", Description: `Cleans CSV files: quotes, "escapes".`, License: "Apache-2.0", Compatibility: "Needs python3",
				Metadata: map[string]string{"author": "example-org", "version": "1.0"}, AllowedTools: []string{"Bash(git:*)", "Read"}}, body: "Body."},
		{name: "block scalars", dir: "b", text: "---\nname: b\ndescription: >\n  Folded over\n  two lines.\n\n  A paragraph.\nlicense: |-\n  MIT\n  text\n---\n",
			want: SkillInfo{Name: "b", Description: "Folded over two lines.\nA paragraph.\n", License: "MIT\ntext"}},
		{name: "plain continued", dir: "c", text: "---\nname: c\ndescription: A long description\n  continued here\n---\n",
			want: SkillInfo{Name: "c", Description: "A long description continued here"}},
		{name: "tools as a list", dir: "d", text: "---\nname: d\ndescription: x\nallowed-tools:\n  - bash\n  - read\n---\n",
			want: SkillInfo{Name: "d", Description: "x", AllowedTools: []string{"bash", "read"}}},
		{name: "flow list, CRLF", dir: "e", text: "---\r\nname: e\r\ndescription: x\r\nallowed-tools: [bash, \"read\"]\r\n---\r\nB",
			want: SkillInfo{Name: "e", Description: "x", AllowedTools: []string{"bash", "read"}}, body: "B"},
		{name: "no frontmatter", dir: "x", text: "# Title\n", err: "no frontmatter"},
		{name: "unclosed", dir: "x", text: "---\nname: x\n", err: "no closing --- line"},
		{name: "name differs", dir: "pdf", text: "---\nname: pdf-tools\ndescription: x\n---\n", err: `name "pdf-tools" differs from its directory "pdf"`},
		{name: "upper case", dir: "Pdf", text: "---\nname: Pdf\ndescription: x\n---\n", err: "want 1 to 64 of a-z 0-9 and -"},
		{name: "double hyphen", dir: "a--b", text: "---\nname: a--b\ndescription: x\n---\n", err: "without --"},
		{name: "leading hyphen", dir: "-a", text: "---\nname: -a\ndescription: x\n---\n", err: "not beginning or ending with -"},
		{name: "too long", dir: strings.Repeat("a", 65), text: "---\nname: " + strings.Repeat("a", 65) + "\ndescription: x\n---\n", err: "want 1 to 64"},
		{name: "no description", dir: "a", text: "---\nname: a\n---\n", err: "description: want 1 to 1,024 characters, got 0"},
		{name: "long description", dir: "a", text: "---\nname: a\ndescription: " + strings.Repeat("x", 1025) + "\n---\n", err: "got 1025"},
		{name: "long compatibility", dir: "a", text: "---\nname: a\ndescription: x\ncompatibility: " + strings.Repeat("x", 501) + "\n---\n", err: "compatibility: want at most 500"},
		{name: "nested metadata", dir: "a", text: "---\nname: a\ndescription: x\nmetadata:\n  a:\n    b: c\n---\n", err: "only one level of nesting"},
		{name: "duplicate key", dir: "a", text: "---\nname: a\nname: a\ndescription: x\n---\n", err: "name appears twice"},
		{name: "unterminated quote", dir: "a", text: "---\nname: a\ndescription: \"x\n---\n", err: "unterminated double-quoted string"},
		{name: "anchors", dir: "a", text: "---\nname: a\ndescription: &x y\n---\n", err: "anchors, aliases and tags are not supported"},
		{name: "not key value", dir: "a", text: "---\nname a\n---\n", err: "want key: value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, body, err := ParseSkill(tc.dir, tc.text)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, info)
			assert.Equal(t, tc.body, body)
		})
	}
}

func FuzzParseSkill(f *testing.F) {
	for _, s := range []string{
		"---\nname: a\ndescription: x\n---\nbody",
		"---\nname: data-tools\ndescription: \"q \\\" x\"\nmetadata:\n  k: v\nallowed-tools: [a, b]\n---\n",
		"---\ndescription: >-\n  a\n\n  b\nlicense: |+\n  x\n---\n",
		"---\nallowed-tools:\n  - x\n  -\n---",
		"---\nname: 'it''s'\n---\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		info, _, err := ParseSkill("a", text)
		if err != nil {
			return
		}
		// Whatever parses holds to the rules.
		if info.Name != "a" || info.Description == "" || len([]rune(info.Description)) > 1024 || len([]rune(info.Compatibility)) > 500 {
			t.Fatalf("ParseSkill accepted %q: %+v", text, info)
		}
	})
}
