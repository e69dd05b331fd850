package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The YAML of a SKILL.md's frontmatter, as agentskills.io uses it: a
// mapping of keys to plain, quoted or block scalars, one nested mapping of
// scalars (metadata) and sequences of scalars. A full YAML parser costs
// the module more than the skills do, and frontmatter needs no more.

// frontValue is a value of the frontmatter: a string, a map[string]string
// or a []string.
type frontValue = any

// splitFrontmatter splits a SKILL.md into its frontmatter's lines and its
// body.
func splitFrontmatter(text string) ([]string, string, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimRight(lines[0], " \t") != "---" {
		return nil, "", errors.New("no frontmatter: the file must begin with a --- line")
	}
	for i := 1; i < len(lines); i++ {
		if l := strings.TrimRight(lines[i], " \t"); l == "---" || l == "..." {
			return lines[1:i], strings.TrimLeft(strings.Join(lines[i+1:], "\n"), "\n"), nil
		}
	}
	return nil, "", errors.New("the frontmatter has no closing --- line")
}

// parseFrontmatter parses frontmatter lines into keys and values.
func parseFrontmatter(lines []string) (map[string]frontValue, error) {
	out := map[string]frontValue{}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if skippable(line) {
			continue
		}
		if indent(line) > 0 {
			return nil, fmt.Errorf("line %d: unexpected indentation", i+1)
		}
		key, rest, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'{}[]#") {
			return nil, fmt.Errorf("line %d: want key: value", i+1)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("line %d: %s appears twice", i+1, key)
		}
		rest = strings.TrimSpace(rest)
		// The lines indented under this key belong to its value.
		j := i + 1
		for j < len(lines) && (skippable(lines[j]) || indent(lines[j]) > 0) {
			j++
		}
		nested := lines[i+1 : j]
		for len(nested) > 0 && skippable(nested[len(nested)-1]) {
			nested = nested[:len(nested)-1]
		}
		v, err := value(rest, nested)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", i+1, key, err)
		}
		out[key] = v
		i = j - 1
	}
	return out, nil
}

func skippable(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}

func indent(line string) int {
	return len(line) - len(strings.TrimLeft(line, " \t"))
}

// value is a key's value: rest of its line, and the lines under it.
func value(rest string, nested []string) (frontValue, error) {
	switch {
	case rest == "" && len(nested) == 0:
		return "", nil
	case rest == "":
		first := strings.TrimSpace(firstLine(nested))
		if strings.HasPrefix(first, "- ") || first == "-" {
			return sequence(nested)
		}
		return mapping(nested)
	case rest[0] == '|' || rest[0] == '>':
		return block(rest, nested)
	case rest[0] == '[':
		if len(nested) > 0 {
			rest += " " + strings.TrimSpace(strings.Join(nested, " "))
		}
		return flowSequence(rest)
	}
	s, err := scalar(rest)
	if err != nil {
		return nil, err
	}
	if len(nested) > 0 {
		if rest[0] == '"' || rest[0] == '\'' {
			return nil, errors.New("a quoted value must end on its line")
		}
		// A plain scalar continued on the next lines is folded with spaces.
		for _, l := range nested {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				s += " " + stripComment(t)
			}
		}
	}
	return s, nil
}

func firstLine(lines []string) string {
	for _, l := range lines {
		if !skippable(l) {
			return l
		}
	}
	return ""
}

// scalar decodes a one-line scalar: double-quoted, single-quoted or plain.
func scalar(s string) (string, error) {
	switch {
	case s == "":
		return "", nil
	case s[0] == '"':
		end := closingQuote(s)
		if end < 0 {
			return "", errors.New("unterminated double-quoted string")
		}
		if t := strings.TrimSpace(s[end+1:]); t != "" && !strings.HasPrefix(t, "#") {
			return "", errors.New("text after a quoted string")
		}
		var out string
		if err := json.Unmarshal([]byte(s[:end+1]), &out); err != nil {
			return "", fmt.Errorf("double-quoted string: %w", err)
		}
		return out, nil
	case s[0] == '\'':
		var b []byte
		for i := 1; i < len(s); i++ {
			if s[i] != '\'' {
				b = append(b, s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '\'' {
				b = append(b, '\'')
				i++
				continue
			}
			if t := strings.TrimSpace(s[i+1:]); t != "" && !strings.HasPrefix(t, "#") {
				return "", errors.New("text after a quoted string")
			}
			return string(b), nil
		}
		return "", errors.New("unterminated single-quoted string")
	case strings.ContainsAny(s[:1], "{&*!%@`"):
		return "", fmt.Errorf("%q: flow mappings, anchors, aliases and tags are not supported", s)
	}
	return stripComment(s), nil
}

func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// stripComment drops a plain scalar's trailing " #comment".
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// block decodes a literal (|) or folded (>) block scalar.
func block(header string, lines []string) (string, error) {
	style, chomp := header[0], header[1:]
	if t := strings.TrimSpace(stripComment(" " + chomp)); t != "" && t != "-" && t != "+" {
		return "", fmt.Errorf("block scalar header %q is not supported", header)
	}
	chomp = strings.TrimSpace(stripComment(" " + chomp))
	ind := -1
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			ind = indent(l)
			break
		}
	}
	var parts []string
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			parts = append(parts, "")
			continue
		}
		if indent(l) < ind {
			return "", errors.New("a block scalar's lines must be indented alike")
		}
		parts = append(parts, l[ind:])
	}
	var s string
	if style == '|' {
		s = strings.Join(parts, "\n")
	} else {
		var b []byte
		for i, p := range parts {
			switch {
			case p == "": // an empty line is a line break
				b = append(b, '\n')
				continue
			case i > 0 && parts[i-1] != "":
				b = append(b, ' ')
			}
			b = append(b, p...)
		}
		s = string(b)
	}
	switch chomp {
	case "-":
		return strings.TrimRight(s, "\n"), nil
	case "+":
		return s + "\n", nil
	}
	return strings.TrimRight(s, "\n") + "\n", nil
}

// mapping decodes indented key: value lines (metadata).
func mapping(lines []string) (map[string]string, error) {
	out := map[string]string{}
	ind := -1
	for _, l := range lines {
		if skippable(l) {
			continue
		}
		if ind < 0 {
			ind = indent(l)
		}
		if indent(l) != ind {
			return nil, errors.New("only one level of nesting is supported")
		}
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key: value", strings.TrimSpace(l))
		}
		k, err := scalar(k)
		if err != nil {
			return nil, err
		}
		s, err := scalar(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s appears twice", k)
		}
		out[k] = s
	}
	return out, nil
}

// sequence decodes indented "- item" lines.
func sequence(lines []string) ([]string, error) {
	var out []string
	for _, l := range lines {
		if skippable(l) {
			continue
		}
		t := strings.TrimSpace(l)
		item, ok := strings.CutPrefix(t, "-")
		if !ok || (item != "" && item[0] != ' ') {
			return nil, fmt.Errorf("%q: want - item", t)
		}
		s, err := scalar(strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// flowSequence decodes [a, b, "c"].
func flowSequence(s string) ([]string, error) {
	s = stripComment(s)
	if !strings.HasSuffix(s, "]") {
		return nil, errors.New("unterminated [ sequence")
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	if inner == "" {
		return []string{}, nil
	}
	var out []string
	for _, item := range strings.Split(inner, ",") {
		v, err := scalar(strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
