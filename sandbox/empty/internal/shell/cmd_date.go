package shell

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

func init() { commands["date"] = cmdDate }

func cmdDate(p *proc) int {
	args := p.args
	when := p.r.sh.now()
	format := "%a %b %e %H:%M:%S %Z %Y"
	utc := true // the sandbox's time zone is UTC
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		a := args[0]
		args = args[1:]
		val := func(prefix string) (string, bool) {
			if strings.HasPrefix(a, prefix+"=") {
				return a[len(prefix)+1:], true
			}
			if len(args) == 0 {
				return "", false
			}
			v := args[0]
			args = args[1:]
			return v, true
		}
		switch {
		case a == "-u" || a == "--utc" || a == "--universal":
		case a == "-d" || strings.HasPrefix(a, "--date"):
			v, ok := val("--date")
			if !ok {
				return p.usage("option requires an argument -- 'd'")
			}
			t, err := parseDate(v, when)
			if err != nil {
				p.errorf("invalid date '%s'", v)
				return 1
			}
			when = t
		case strings.HasPrefix(a, "-d") && len(a) > 2:
			t, err := parseDate(a[2:], when)
			if err != nil {
				p.errorf("invalid date '%s'", a[2:])
				return 1
			}
			when = t
		case a == "-r" || strings.HasPrefix(a, "--reference"):
			v, ok := val("--reference")
			if !ok {
				return p.usage("option requires an argument -- 'r'")
			}
			in, _, err := p.r.stat(v)
			if err != nil {
				p.errorf("%s: %s", v, errText(err))
				return 1
			}
			when = in.ModTime()
		case a == "-R" || a == "--rfc-email":
			format = "%a, %d %b %Y %H:%M:%S %z"
		case strings.HasPrefix(a, "-I") || strings.HasPrefix(a, "--iso-8601"):
			spec := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(a, "-I"), "--iso-8601"), "=")
			switch spec {
			case "", "date":
				format = "%Y-%m-%d"
			case "hours":
				format = "%Y-%m-%dT%H%:z"
			case "minutes":
				format = "%Y-%m-%dT%H:%M%:z"
			case "seconds":
				format = "%Y-%m-%dT%H:%M:%S%:z"
			case "ns":
				format = "%Y-%m-%dT%H:%M:%S,%N%:z"
			}
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		}
	}
	if len(args) > 0 {
		if !strings.HasPrefix(args[0], "+") {
			p.errorf("invalid date '%s'", args[0])
			return 1
		}
		format = args[0][1:]
	}
	if utc {
		when = when.UTC()
	}
	return boolStatus(p.write(strftime(format, when)+"\n") != nil)
}

// relDate reads "3 days ago" and the like; compiled at first use, not at
// every module instance's start.
var relDate = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([+-]?\d+)\s*(second|sec|minute|min|hour|day|week|month|year)s?(\s+ago)?$`)
})

// parseDate reads date -d's common forms: @epoch, ISO dates and times,
// now, today, yesterday, tomorrow, and "N units [ago]".
func parseDate(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	now = now.UTC()
	switch strings.ToLower(s) {
	case "now", "":
		return now, nil
	case "today":
		return now, nil
	case "yesterday":
		return now.AddDate(0, 0, -1), nil
	case "tomorrow":
		return now.AddDate(0, 0, 1), nil
	}
	if strings.HasPrefix(s, "@") {
		f, err := strconv.ParseFloat(s[1:], 64)
		if err != nil {
			return time.Time{}, err
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	if m := relDate().FindStringSubmatch(strings.ToLower(s)); m != nil {
		n, _ := strconv.Atoi(m[1])
		if m[3] != "" {
			n = -n
		}
		switch m[2] {
		case "second", "sec":
			return now.Add(time.Duration(n) * time.Second), nil
		case "minute", "min":
			return now.Add(time.Duration(n) * time.Minute), nil
		case "hour":
			return now.Add(time.Duration(n) * time.Hour), nil
		case "day":
			return now.AddDate(0, 0, n), nil
		case "week":
			return now.AddDate(0, 0, 7*n), nil
		case "month":
			return now.AddDate(0, n, 0), nil
		default:
			return now.AddDate(n, 0, 0), nil
		}
	}
	for _, layout := range []string{
		time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04",
		"2006-01-02", "2006/01/02", "01/02/2006", "2006-01-02 15:04:05 MST", time.RFC1123, time.RFC1123Z,
		time.UnixDate, time.ANSIC, "Jan 2 2006", "2 Jan 2006", "January 2, 2006", "15:04:05", "15:04",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			if layout == "15:04:05" || layout == "15:04" {
				t = time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date %q", s)
}

// strftime formats t as date(1) does.
func strftime(format string, t time.Time) string {
	// The fields are computed once, and every number goes through one
	// appendPadded call: inlined at each directive, the time accessors and the
	// padding made this function 41 KB of wasm.
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	weekday, yearDay := int(t.Weekday()), t.YearDay()
	hour12 := hour % 12
	if hour12 == 0 {
		hour12 = 12
	}
	var b []byte
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b = append(b, c)
			continue
		}
		i++
		pad := byte(0) // '-' none, '_' spaces, '0' zeros
		if strings.IndexByte("-_0^#", format[i]) >= 0 && i+1 < len(format) {
			pad = format[i]
			i++
		}
		// Numeric directives set n and width; the others write directly.
		n, width, numeric := 0, 2, true
		spaces := func() { // directives padded with spaces unless a flag says otherwise
			if pad == 0 {
				pad = '_'
			}
		}
		switch format[i] {
		case 'Y':
			n, width = year, 4
		case 'C':
			n = year / 100
		case 'y':
			n = year % 100
		case 'm':
			n = int(month)
		case 'd':
			n = day
		case 'e':
			n = day
			spaces()
		case 'H':
			n = hour
		case 'k':
			n = hour
			spaces()
		case 'I':
			n = hour12
		case 'l':
			n = hour12
			spaces()
		case 'M':
			n = minute
		case 'S':
			n = second
		case 'j':
			n, width = yearDay, 3
		case 'V':
			_, n = t.ISOWeek()
		case 'G':
			n, _ = t.ISOWeek()
			width = 4
		case 'U':
			n = (yearDay + 6 - weekday) / 7
		default:
			numeric = false
		}
		if numeric {
			b = appendPadded(b, n, width, pad)
			continue
		}
		switch format[i] {
		case 'N':
			b = append(b, fmt.Sprintf("%09d", t.Nanosecond())...)
		case 's':
			b = append(b, strconv.FormatInt(t.Unix(), 10)...)
		case 'u':
			wd := weekday
			if wd == 0 {
				wd = 7
			}
			b = append(b, strconv.Itoa(wd)...)
		case 'w':
			b = append(b, strconv.Itoa(weekday)...)
		case 'a':
			b = append(b, t.Format("Mon")...)
		case 'A':
			b = append(b, t.Format("Monday")...)
		case 'b', 'h':
			b = append(b, t.Format("Jan")...)
		case 'B':
			b = append(b, t.Format("January")...)
		case 'p':
			b = append(b, t.Format("PM")...)
		case 'P':
			b = append(b, strings.ToLower(t.Format("PM"))...)
		case 'Z':
			b = append(b, t.Format("MST")...)
		case 'z':
			b = append(b, t.Format("-0700")...)
		case ':':
			if i+1 < len(format) && format[i+1] == 'z' {
				i++
				b = append(b, t.Format("-07:00")...)
			} else {
				b = append(b, "%:"...)
			}
		case 'T':
			b = append(b, t.Format("15:04:05")...)
		case 'R':
			b = append(b, t.Format("15:04")...)
		case 'D':
			b = append(b, t.Format("01/02/06")...)
		case 'F':
			b = append(b, t.Format("2006-01-02")...)
		case 'c':
			b = append(b, t.Format("Mon Jan _2 15:04:05 2006")...)
		case 'x':
			b = append(b, t.Format("01/02/06")...)
		case 'X':
			b = append(b, t.Format("15:04:05")...)
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%')
			b = append(b, format[i])
		}
	}
	return string(b)
}

// appendPadded appends n at least width characters wide: with spaces for
// the '_' flag, unpadded for '-', else with zeros.
func appendPadded(b []byte, n, width int, pad byte) []byte {
	s := strconv.Itoa(n)
	fill := "0"
	switch pad {
	case '-':
		width = 0
	case '_':
		fill = " "
	}
	for len(s) < width {
		s = fill + s
	}
	return append(b, s...)
}
