package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
)

// The skill tools.
const (
	activateSkillTool = "activate_skill"
	readSkillTool     = "read_skill_resource"

	// sandboxSkillsDir is where a sandbox's skills are, under its working
	// directory.
	sandboxSkillsDir = ".agents/skills"
	// maxSkillFiles bounds the files activate_skill lists.
	maxSkillFiles = 100
)

// SkillInfo is a skill's frontmatter (agentskills.io's SKILL.md format).
type SkillInfo struct {
	// Name is 1 to 64 of a-z 0-9 and -, not beginning or ending with -,
	// without --, and the name of the skill's directory.
	Name string
	// Description says what the skill does and when to use it: what the
	// model reads to choose it. 1 to 1,024 characters.
	Description   string
	License       string
	Compatibility string // at most 500 characters
	Metadata      map[string]string
	// AllowedTools, when set, are the tools a Skill call offers (with the
	// skill tools): "bash read", or "Bash(git:*) Read".
	AllowedTools []string
}

// skillEntry is a skill: its frontmatter, its instructions, and how to
// list and read its files.
type skillEntry struct {
	SkillInfo
	Body  string
	files func(ctx context.Context) ([]string, error)
	read  func(ctx context.Context, name string) (string, error)
}

// SkillSource is where a harness finds skills: SkillsFS or SandboxSkills.
// The skill format's parser is linked only into modules that use one.
type SkillSource struct {
	load func(ctx context.Context, sb sandbox.Sandbox) ([]*skillEntry, error)
	// strict sources are the agent's own: New checks them, and a skill
	// that breaks the format is an error.
	strict bool
}

// SkillsFS is the skills of fsys: each top-level directory holding a
// SKILL.md, its other files the skill's resources. An embed.FS of a
// skills directory goes through fs.Sub:
//
//	//go:embed skills
//	var skillFiles embed.FS
//	sub, _ := fs.Sub(skillFiles, "skills")
//	harness.Config{Skills: []harness.SkillSource{harness.SkillsFS(sub)}}
//
// New fails on a skill that breaks the format, naming it.
func SkillsFS(fsys fs.FS) SkillSource {
	return SkillSource{strict: true, load: func(context.Context, sandbox.Sandbox) ([]*skillEntry, error) { return loadSkills(fsys) }}
}

// SandboxSkills is the skills under .agents/skills of the harness's
// sandbox, each a directory with a SKILL.md. The sandbox is not the
// agent's code: a skill there that breaks the format is left out.
func SandboxSkills() SkillSource {
	return SkillSource{load: func(ctx context.Context, sb sandbox.Sandbox) ([]*skillEntry, error) {
		if sb == nil {
			return nil, errors.New("SandboxSkills: the harness has no sandbox (Config.Sandbox)")
		}
		return sandboxSkills(ctx, sb)
	}}
}

// ParseSkill parses a SKILL.md found in a directory called dir, holding
// it to agentskills.io's rules, and returns its frontmatter and its body
// (the instructions).
func ParseSkill(dir, text string) (SkillInfo, string, error) {
	lines, body, err := splitFrontmatter(text)
	if err != nil {
		return SkillInfo{}, "", err
	}
	m, err := parseFrontmatter(lines)
	if err != nil {
		return SkillInfo{}, "", fmt.Errorf("frontmatter: %w", err)
	}
	var info SkillInfo
	str := func(key string) (string, error) {
		switch v := m[key].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		}
		return "", fmt.Errorf("%s: want a string", key)
	}
	if info.Name, err = str("name"); err != nil {
		return info, "", err
	}
	if err := checkSkillName(info.Name, dir); err != nil {
		return info, "", err
	}
	if info.Description, err = str("description"); err != nil {
		return info, "", err
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(info.Description)); n == 0 || n > 1024 {
		return info, "", fmt.Errorf("description: want 1 to 1,024 characters, got %d", n)
	}
	if info.License, err = str("license"); err != nil {
		return info, "", err
	}
	if info.Compatibility, err = str("compatibility"); err != nil {
		return info, "", err
	}
	if n := utf8.RuneCountInString(info.Compatibility); n > 500 {
		return info, "", fmt.Errorf("compatibility: want at most 500 characters, got %d", n)
	}
	switch v := m["metadata"].(type) {
	case nil:
	case map[string]string:
		info.Metadata = v
	case string:
		if v != "" {
			return info, "", errors.New("metadata: want a mapping of strings")
		}
	default:
		return info, "", errors.New("metadata: want a mapping of strings")
	}
	switch v := m["allowed-tools"].(type) {
	case nil:
	case string:
		info.AllowedTools = strings.Fields(v)
	case []string:
		info.AllowedTools = v
	default:
		return info, "", errors.New("allowed-tools: want a space-separated string")
	}
	return info, body, nil
}

func checkSkillName(name, dir string) error {
	bad := len(name) == 0 || len(name) > 64 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--")
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("name %q: want 1 to 64 of a-z 0-9 and -, not beginning or ending with -, without --", name)
	}
	if name != dir {
		return fmt.Errorf("name %q differs from its directory %q", name, dir)
	}
	return nil
}

// loadSkills reads the skills of fsys: each top-level directory with a
// SKILL.md. A skill that breaks the format is an error naming it.
func loadSkills(fsys fs.FS) ([]*skillEntry, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("skills: %w", err)
	}
	var out []*skillEntry
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name()+"/SKILL.md")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("skill %s: %w", e.Name(), err)
		}
		info, body, err := ParseSkill(e.Name(), string(b))
		if err != nil {
			return nil, fmt.Errorf("skill %s/SKILL.md: %w", e.Name(), err)
		}
		sub, err := fs.Sub(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("skill %s: %w", e.Name(), err)
		}
		out = append(out, &skillEntry{SkillInfo: info, Body: body,
			files: func(context.Context) ([]string, error) { return fsFiles(sub) },
			read:  func(_ context.Context, name string) (string, error) { return fsRead(sub, name) }})
	}
	return out, nil
}

// sandboxSkills reads the skills under .agents/skills of the sandbox. The
// sandbox is not the agent's code: a skill there that breaks the format
// is left out, not an error.
func sandboxSkills(ctx context.Context, sb sandbox.Sandbox) ([]*skillEntry, error) {
	entries, err := sb.ReadDir(ctx, sandboxSkillsDir)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, sandbox.ErrNotDir):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", sandboxSkillsDir, err)
	}
	var out []*skillEntry
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := path.Join(sandboxSkillsDir, e.Name())
		text, err := sb.ReadText(ctx, dir+"/SKILL.md")
		if err != nil {
			continue
		}
		info, body, err := ParseSkill(e.Name(), text)
		if err != nil {
			continue
		}
		out = append(out, &skillEntry{SkillInfo: info, Body: body,
			files: func(ctx context.Context) ([]string, error) { return sandboxFiles(ctx, sb, dir) },
			read:  func(ctx context.Context, name string) (string, error) { return sandboxRead(ctx, sb, dir, name) }})
	}
	return out, nil
}

// fsFiles lists a skill's files but SKILL.md, at most maxSkillFiles.
func fsFiles(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && p != "SKILL.md" && len(out) < maxSkillFiles {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func sandboxFiles(ctx context.Context, sb sandbox.Sandbox, root string) ([]string, error) {
	var out []string
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		entries, err := sb.ReadDir(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			r := path.Join(rel, e.Name())
			switch {
			case len(out) >= maxSkillFiles:
				return nil
			case e.IsDir():
				if err := walk(path.Join(dir, e.Name()), r); err != nil {
					return err
				}
			case r != "SKILL.md":
				out = append(out, r)
			}
		}
		return nil
	}
	err := walk(root, "")
	sort.Strings(out)
	return out, err
}

// cleanSkillPath is name inside a skill's directory, or an error.
func cleanSkillPath(name string) (string, error) {
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return "", fmt.Errorf("%s: the path must be inside the skill's directory", name)
	}
	return clean, nil
}

func fsRead(fsys fs.FS, name string) (string, error) {
	clean, err := cleanSkillPath(name)
	if err != nil {
		return "", err
	}
	b, err := fs.ReadFile(fsys, clean)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, errors.Unwrap(err))
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not a text file", name)
	}
	return string(b), nil
}

func sandboxRead(ctx context.Context, sb sandbox.Sandbox, dir, name string) (string, error) {
	clean, err := cleanSkillPath(name)
	if err != nil {
		return "", err
	}
	text, err := sb.ReadText(ctx, path.Join(dir, clean))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: no such file in the skill", name)
	case errors.Is(err, sandbox.ErrNotText):
		return "", fmt.Errorf("%s is not a text file", name)
	}
	return text, err
}

type activateIn struct {
	Name string `json:"name" jsonschema:"description=The skill's name"`
}

type readSkillIn struct {
	Skill string `json:"skill" jsonschema:"description=The skill's name"`
	Path  string `json:"path" jsonschema:"description=The file's path inside the skill's directory\\, such as reference.md or scripts/run.sh"`
}

// skillTools are activate_skill and read_skill_resource for h's skills.
func (h *Harness) skillTools() []tool.Tool {
	activate := tool.New(activateSkillTool, "Loads a skill's instructions, and lists its files.",
		func(ctx *agent.Context, in activateIn) (string, error) {
			s := h.skill(in.Name)
			if s == nil {
				return "", h.noSkill(in.Name)
			}
			b := fmt.Appendf(nil, "# Skill %s\n\n%s", s.Name, s.Body)
			files, err := s.files(ctx)
			if err != nil {
				return "", fmt.Errorf("list the files of skill %s: %w", s.Name, err)
			}
			if len(files) > 0 {
				b = append(b, "\n\nFiles of this skill (read them with read_skill_resource):\n"...)
				for _, f := range files {
					b = append(b, "- "+f+"\n"...)
				}
			}
			return string(b), nil
		}).Idempotent()
	read := tool.New(readSkillTool, "Reads a file of a skill, such as a reference or a script its instructions mention.",
		func(ctx *agent.Context, in readSkillIn) (string, error) {
			s := h.skill(in.Skill)
			if s == nil {
				return "", h.noSkill(in.Skill)
			}
			return s.read(ctx, in.Path)
		}).Idempotent()
	return []tool.Tool{activate, read}
}

func (h *Harness) noSkill(name string) error {
	names := make([]string, len(h.skills))
	for i, s := range h.skills {
		names[i] = s.Name
	}
	return fmt.Errorf("there is no skill %q; the skills are: %s", name, strings.Join(names, ", "))
}

// Skills lists the skills the harness offers, from its Config.Skills.
func (h *Harness) Skills(ctx context.Context) ([]SkillInfo, error) {
	if err := h.context(ctx); err != nil {
		return nil, err
	}
	out := make([]SkillInfo, len(h.skills))
	for i, s := range h.skills {
		out[i] = s.SkillInfo
	}
	return out, nil
}

// Skill runs the skill name in session s with args (encoded as JSON) and
// returns its result as a T, as Prompt does. The model gets the skill's
// instructions and the arguments; its allowed-tools, when set, are the
// tools offered.
func Skill[T any](ctx context.Context, s *Session, name string, args any, opts ...Option) (T, error) {
	var v T
	spec := resultSpecOf(reflect.TypeFor[T]())
	raw, err := s.skill(ctx, name, args, spec, opts)
	if err == nil {
		err = spec.decode(raw, &v)
	}
	return v, err
}

func (s *Session) skill(ctx context.Context, name string, args any, spec *resultSpec, opts []Option) (json.RawMessage, error) {
	if err := s.h.context(ctx); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	sk := s.h.skill(name)
	if sk == nil {
		return nil, fmt.Errorf("harness: %w", s.h.noSkill(name))
	}
	a, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("skill %s: encode its arguments: %w", name, err)
	}
	text := fmt.Sprintf("Run the skill %q with these arguments:\n\n```json\n%s\n```\n\nThe skill's instructions:\n\n%s", name, a, sk.Body)
	return s.prompt(ctx, text, spec, append(opts, func(o *options) { o.skill = sk }))
}
