package shell

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxWidth bounds printf's widths and precisions: the module's memory is
// the sandbox's.
const maxWidth = 1 << 20

// printfFormat formats args with format as bash's printf does: the format
// is reused while arguments remain. It returns the output, the messages
// for arguments that are not numbers, and whether \c stopped the output.
func printfFormat(format string, args []string) (string, []string, bool) {
	var out strings.Builder
	var errs []string
	for {
		used, stop := printfOnce(&out, format, &args, &errs)
		if stop || len(args) == 0 || used == 0 {
			return out.String(), errs, stop
		}
	}
}

// printfOnce formats once, taking arguments from args, and returns how
// many conversions took one.
func printfOnce(out *strings.Builder, format string, args *[]string, errs *[]string) (used int, stop bool) {
	next := func() (string, bool) {
		if len(*args) == 0 {
			return "", false
		}
		a := (*args)[0]
		*args = (*args)[1:]
		used++
		return a, true
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '\\' {
			n, s, st := escape(format[i+1:], false)
			out.WriteString(s)
			i += n
			if st {
				return used, true
			}
			continue
		}
		if c != '%' {
			out.WriteByte(c)
			continue
		}
		// %[flags][width][.precision]conversion
		j := i + 1
		for j < len(format) && strings.IndexByte("-+ #0", format[j]) >= 0 {
			j++
		}
		spec := format[i:j]
		width := ""
		if j < len(format) && format[j] == '*' {
			a, _ := next()
			n, _ := strconv.Atoi(a)
			width = strconv.Itoa(n)
			j++
		} else {
			k := j
			for j < len(format) && format[j] >= '0' && format[j] <= '9' {
				j++
			}
			width = format[k:j]
		}
		prec := ""
		hasPrec := false
		if j < len(format) && format[j] == '.' {
			hasPrec = true
			j++
			if j < len(format) && format[j] == '*' {
				a, _ := next()
				n, _ := strconv.Atoi(a)
				prec = strconv.Itoa(n)
				j++
			} else {
				k := j
				for j < len(format) && format[j] >= '0' && format[j] <= '9' {
					j++
				}
				prec = format[k:j]
			}
		}
		// Length modifiers mean nothing here.
		for j < len(format) && strings.IndexByte("hlLqjzt", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			out.WriteString(format[i:])
			return used, false
		}
		conv := format[j]
		i = j
		if w, _ := strconv.Atoi(strings.TrimLeft(width, "-")); w > maxWidth {
			*errs = append(*errs, fmt.Sprintf("%s: field width too large (at most %d)", width, maxWidth))
			return used, true
		}
		if p, _ := strconv.Atoi(prec); p > maxWidth {
			*errs = append(*errs, fmt.Sprintf("%s: precision too large (at most %d)", prec, maxWidth))
			return used, true
		}
		goSpec := spec + width
		if hasPrec {
			goSpec += "." + prec
		}
		switch conv {
		case '%':
			out.WriteByte('%')
		case 's':
			a, _ := next()
			fmt.Fprintf(out, goSpec+"s", a)
		case 'b':
			a, _ := next()
			s, st := expandEscapes(a)
			fmt.Fprintf(out, goSpec+"s", s)
			if st {
				return used, true
			}
		case 'q':
			a, _ := next()
			fmt.Fprintf(out, spec+width+"s", quote(a))
		case 'c':
			a, _ := next()
			if a != "" {
				_, size := utf8.DecodeRuneInString(a)
				fmt.Fprintf(out, spec+width+"s", a[:size])
			} else if width != "" {
				fmt.Fprintf(out, spec+width+"s", "")
			}
		case 'd', 'i':
			a, _ := next()
			fmt.Fprintf(out, goSpec+"d", printfInt(a, errs))
		case 'u':
			a, _ := next()
			fmt.Fprintf(out, goSpec+"d", uint64(printfInt(a, errs)))
		case 'o', 'x', 'X':
			a, _ := next()
			fmt.Fprintf(out, goSpec+string(conv), uint64(printfInt(a, errs)))
		case 'f', 'F', 'e', 'E', 'g', 'G':
			a, _ := next()
			v := printfFloat(a, errs)
			if conv == 'F' {
				conv = 'f'
			}
			fmt.Fprintf(out, goSpec+string(conv), v)
		default:
			*errs = append(*errs, fmt.Sprintf("%%%c: invalid directive", conv))
			return used, true
		}
	}
	return used, false
}

// printfInt parses a number argument as printf takes it: decimal, 0x hex,
// 0 octal, or 'c for a character's code.
func printfInt(a string, errs *[]string) int64 {
	s := strings.TrimSpace(a)
	if s == "" {
		return 0
	}
	if s[0] == '\'' || s[0] == '"' {
		r, _ := utf8.DecodeRuneInString(s[1:])
		return int64(r)
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		// A leading number is used, with a complaint.
		k := 0
		if k < len(s) && (s[k] == '-' || s[k] == '+') {
			k++
		}
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		n, _ = strconv.ParseInt(s[:k], 10, 64)
		*errs = append(*errs, fmt.Sprintf("%s: invalid number", a))
	}
	return n
}

func printfFloat(a string, errs *[]string) float64 {
	s := strings.TrimSpace(a)
	if s == "" {
		return 0
	}
	if s[0] == '\'' || s[0] == '"' {
		r, _ := utf8.DecodeRuneInString(s[1:])
		return float64(r)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("%s: invalid number", a))
	}
	return v
}

// expandEscapes interprets the backslash escapes of echo -e and %b, and
// reports whether \c stopped the output.
func expandEscapes(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		n, out, stop := escape(s[i+1:], true)
		b.WriteString(out)
		i += n
		if stop {
			return b.String(), true
		}
	}
	return b.String(), false
}

// escape interprets the escape after a backslash in s and returns how many
// bytes of s it used. echo's \0nnn takes up to three digits after the 0;
// printf's \nnn takes up to three octal digits.
func escape(s string, echo bool) (int, string, bool) {
	if s == "" {
		return 0, `\`, false
	}
	switch c := s[0]; c {
	case 'a':
		return 1, "\a", false
	case 'b':
		return 1, "\b", false
	case 'c':
		return 1, "", true
	case 'e', 'E':
		return 1, "\x1b", false
	case 'f':
		return 1, "\f", false
	case 'n':
		return 1, "\n", false
	case 'r':
		return 1, "\r", false
	case 't':
		return 1, "\t", false
	case 'v':
		return 1, "\v", false
	case '\\':
		return 1, `\`, false
	case '"':
		if echo {
			return 0, `\`, false
		}
		return 1, `"`, false
	case '\'':
		if echo {
			return 0, `\`, false
		}
		return 1, "'", false
	case 'x':
		k := 1
		for k < len(s) && k < 3 && isHex(s[k]) {
			k++
		}
		if k == 1 {
			return 0, `\`, false
		}
		n, _ := strconv.ParseUint(s[1:k], 16, 8)
		return k, string([]byte{byte(n)}), false
	case 'u', 'U':
		max := 5
		if c == 'U' {
			max = 9
		}
		k := 1
		for k < len(s) && k < max && isHex(s[k]) {
			k++
		}
		if k == 1 {
			return 0, `\`, false
		}
		n, _ := strconv.ParseUint(s[1:k], 16, 32)
		return k, string(rune(n)), false
	}
	if s[0] >= '0' && s[0] <= '7' {
		start, max := 0, 3
		if echo {
			if s[0] != '0' {
				return 0, `\`, false
			}
			start, max = 1, 4
		}
		k := start
		for k < len(s) && k < max && s[k] >= '0' && s[k] <= '7' {
			k++
		}
		n, _ := strconv.ParseUint("0"+s[start:k], 8, 16)
		return k, string([]byte{byte(n)}), false
	}
	return 0, `\`, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
