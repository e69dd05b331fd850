package schema

import (
	"reflect"
	"sort"
	"strings"
)

// Field is one JSON member of a struct as encoding/json sees it.
type Field struct {
	Name      string // the JSON name
	Index     []int  // for reflect.Value.FieldByIndex
	Type      reflect.Type
	OmitEmpty bool // omitempty or omitzero: the member may be absent
	Quoted    bool // the ",string" option: the value travels as a string
	// Rules are what the field's jsonschema tags add; nil when none.
	Rules *Rules
}

// Fields returns the JSON members of struct type t, promoted fields of
// embedded structs included, by encoding/json's rules: a name at a
// shallower depth wins; at equal depth a tagged name wins; otherwise the
// name is ambiguous and dropped.
func Fields(t reflect.Type) []Field {
	type candidate struct {
		Field
		depth  int
		tagged bool
	}
	var all []candidate
	type level struct {
		t     reflect.Type
		index []int
	}
	current := []level{{t: t}}
	visited := map[reflect.Type]bool{}
	for depth := 0; len(current) > 0; depth++ {
		var next []level
		for _, l := range current {
			if visited[l.t] {
				continue
			}
			visited[l.t] = true
			for i := range l.t.NumField() {
				sf := l.t.Field(i)
				index := append(append([]int(nil), l.index...), i)
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				ft := sf.Type
				if sf.Anonymous {
					et := ft
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
					if name == "" && et.Kind() == reflect.Struct {
						next = append(next, level{t: et, index: index})
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				c := candidate{depth: depth, tagged: name != ""}
				if name == "" {
					name = sf.Name
				}
				c.Field = Field{Name: name, Index: index, Type: ft,
					Rules: rulesOf(sf.Tag.Get("jsonschema"), sf.Tag.Get("jsonschema_description"), ft)}
				for opt := range strings.SplitSeq(opts, ",") {
					switch opt {
					case "omitempty", "omitzero":
						c.OmitEmpty = true
					case "string":
						switch ft.Kind() {
						case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
							reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
							reflect.Float32, reflect.Float64, reflect.String:
							c.Quoted = true
						}
					}
				}
				all = append(all, c)
			}
		}
		current = next
	}

	byName := map[string][]candidate{}
	var names []string
	for _, c := range all {
		if _, ok := byName[c.Name]; !ok {
			names = append(names, c.Name)
		}
		byName[c.Name] = append(byName[c.Name], c)
	}
	var fields []Field
	for _, name := range names {
		cs := byName[name]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].depth < cs[j].depth })
		dominant := cs[0]
		var rivals int
		for _, c := range cs[1:] {
			if c.depth != dominant.depth {
				break
			}
			if c.tagged == dominant.tagged {
				rivals++
			} else if c.tagged {
				dominant = c
				rivals = 0
			}
		}
		if rivals == 0 {
			fields = append(fields, dominant.Field)
		}
	}
	sort.SliceStable(fields, func(i, j int) bool { return lessIndex(fields[i].Index, fields[j].Index) })
	return fields
}

func lessIndex(a, b []int) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
