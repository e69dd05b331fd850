package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Decode decodes the JSON value data into the value v points to, accepting
// exactly what For describes for that type, where encoding/json alone would
// be lenient: a member name must match a field's JSON name exactly (not
// just without case), a required field must be present, and null is
// refused where the schema has no null. Unknown members and values of the
// wrong type are refused as with encoding/json's DisallowUnknownFields.
//
// Empty data or null for a struct stands for {}: a run with no payload gets
// its zero input when the input has no required field.
//
// The error says which member is wrong and why, with a path such as
// "items[2].name".
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode into %T: not a non-nil pointer", v)
	}
	t := rv.Type().Elem()
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) && t.Kind() == reflect.Struct {
		data = []byte("{}")
	}

	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("not one JSON value: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("not one JSON value: data after the value")
	}
	if ptr, dup := duplicateMember(data); dup {
		return fmt.Errorf("not one JSON value: member %s appears twice", ptr)
	}
	if err := check(tree, t, ""); err != nil {
		return err
	}

	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%s: want %s, got JSON %s", where(typeErr.Field), kind(typeErr.Type), typeErr.Value)
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// check walks the generic value tree alongside t and refuses what For(t)
// does not allow. What it lets through, encoding/json decodes.
func check(tree any, t reflect.Type, path string) error {
	if tree == nil {
		if nullAllowed(t) {
			return nil
		}
		return fmt.Errorf("%s: want %s, got null", where(path), kind(t))
	}
	if t == timeType || t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		return nil // decodes itself
	}
	wrong := func() error {
		return fmt.Errorf("%s: want %s, got JSON %s", where(path), kind(t), jsonType(tree))
	}
	switch t.Kind() {
	case reflect.Pointer:
		return check(tree, t.Elem(), path)
	case reflect.Bool:
		if _, ok := tree.(bool); !ok {
			return wrong()
		}
	case reflect.String:
		if _, ok := tree.(string); !ok {
			return wrong()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tree.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			return fmt.Errorf("%s: want %s, got JSON number %s", where(path), kind(t), n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := tree.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			return fmt.Errorf("%s: want %s, got JSON number %s", where(path), kind(t), n)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tree.(json.Number)
		if !ok {
			return wrong()
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || t.Kind() == reflect.Float32 && math.Abs(f) > math.MaxFloat32 {
			return fmt.Errorf("%s: want %s, got JSON number %s", where(path), kind(t), n)
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if _, ok := tree.(string); !ok {
				return wrong()
			}
			return nil
		}
		items, ok := tree.([]any)
		if !ok {
			return wrong()
		}
		if t.Kind() == reflect.Array && len(items) != t.Len() {
			// encoding/json would pad or drop; the schema says exactly.
			return fmt.Errorf("%s: want %d items, got %d", where(path), t.Len(), len(items))
		}
		for i, item := range items {
			if err := check(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		members, ok := tree.(map[string]any)
		if !ok {
			return wrong()
		}
		for _, k := range sortedKeys(members) {
			if err := check(members[k], t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		members, ok := tree.(map[string]any)
		if !ok {
			return wrong()
		}
		fields := Fields(t)
		byName := make(map[string]Field, len(fields))
		for _, f := range fields {
			byName[f.Name] = f
		}
		for _, k := range sortedKeys(members) {
			f, ok := byName[k]
			if !ok {
				return fmt.Errorf("%s: unknown field", where(join(path, k)))
			}
			if f.Quoted {
				continue // a string the decoder checks
			}
			if err := check(members[k], f.Type, join(path, k)); err != nil {
				return err
			}
			if err := f.Rules.checkValue(members[k], f.Type, join(path, k)); err != nil {
				return err
			}
		}
		for _, f := range fields {
			if _, present := members[f.Name]; !present && !f.OmitEmpty {
				return fmt.Errorf("%s: missing", where(join(path, f.Name)))
			}
		}
	}
	return nil
}

// jsonType names the JSON type of a decoded value, for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// nullAllowed reports whether For(t) allows null.
func nullAllowed(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	}
	return t == rawMessageType || t != timeType &&
		(t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType))
}

// kind names the JSON type t decodes from, for error messages.
func kind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer (" + t.Kind().String() + ")"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return "string (base64)"
		}
		return "array"
	case reflect.Map, reflect.Struct:
		if t == timeType {
			return "string (RFC 3339 time)"
		}
		return "object"
	case reflect.Pointer:
		return kind(t.Elem())
	}
	return "a value"
}

func where(path string) string {
	if path == "" {
		return "payload"
	}
	return "field " + strconv.Quote(path)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
