// Package schema derives JSON Schemas (draft 2020-12) from Go types, by the
// rules encoding/json uses to encode and decode them. The manifest carries
// one for each agent's payload and result.
//
// A struct is an object whose members are its JSON fields; a field without
// omitempty or omitzero is required, and no other member is allowed (the
// payload decoder rejects unknown fields). A field's jsonschema tag adds a
// description, an enum, bounds and the like (see Rules), which the decoder
// enforces too. Integers narrower than 64 bits carry their range. Pointers add null, as do slices
// and maps, which encoding/json writes as null when nil. A recursive struct
// type is written once under $defs and referred to with $ref.
package schema

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Dialect is the $schema of every generated schema.
const Dialect = "https://json-schema.org/draft/2020-12/schema"

var (
	timeType            = reflect.TypeFor[time.Time]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// For returns the JSON Schema of the values of t.
func For(t reflect.Type) json.RawMessage {
	g := &generator{recursive: recursiveTypes(t), defs: map[string]any{}, names: map[reflect.Type]string{}}
	s := g.schema(t)
	root, ok := s.(map[string]any)
	if !ok { // true: anything goes
		root = map[string]any{}
	}
	root["$schema"] = Dialect
	if len(g.defs) > 0 {
		root["$defs"] = g.defs
	}
	b, err := json.Marshal(root)
	if err != nil {
		// Only maps, slices, strings and bools go in: this cannot fail.
		panic("schema: encode: " + err.Error())
	}
	return b
}

type generator struct {
	recursive map[reflect.Type]bool
	defs      map[string]any
	names     map[reflect.Type]string
}

// schema returns a map for a schema object or true for "anything".
func (g *generator) schema(t reflect.Type) any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawMessageType:
		return true
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType)):
		return true // encodes itself: nothing to say about its shape
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "minimum": -(1 << (t.Bits() - 1)), "maximum": 1<<(t.Bits()-1) - 1}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": 1<<t.Bits() - 1}
	case reflect.Float32:
		return map[string]any{"type": "number", "minimum": -math.MaxFloat32, "maximum": math.MaxFloat32}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Interface:
		return true
	case reflect.Pointer:
		return nullable(g.schema(t.Elem()))
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(textUnmarshalerType) {
			return map[string]any{"type": []any{"string", "null"}, "contentEncoding": "base64"}
		}
		return nullable(map[string]any{"type": "array", "items": g.schema(t.Elem())})
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return nullable(map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())})
	case reflect.Struct:
		if g.recursive[t] {
			return g.ref(t)
		}
		return g.object(t)
	default: // chan, func, complex: encoding/json refuses them
		return map[string]any{"not": true}
	}
}

func (g *generator) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []any{}
	for _, f := range Fields(t) {
		s := g.schema(f.Type)
		if f.Quoted {
			s = map[string]any{"type": "string"}
		} else if f.Rules != nil {
			s = f.Rules.apply(s, f.Type)
		}
		props[f.Name] = s
		if !f.OmitEmpty {
			required = append(required, f.Name)
		}
	}
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// ref writes t's schema under $defs once and returns a reference to it.
func (g *generator) ref(t reflect.Type) map[string]any {
	name, ok := g.names[t]
	if !ok {
		name = t.Name()
		if name == "" {
			name = "T"
		}
		for i := 2; g.defs[name] != nil; i++ {
			name = t.Name() + "_" + strconv.Itoa(i)
		}
		g.names[t] = name
		g.defs[name] = true // reserve the name while the body is written
		g.defs[name] = g.object(t)
	}
	return map[string]any{"$ref": "#/$defs/" + name}
}

// nullable adds null to the types a schema allows.
func nullable(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	switch typ := m["type"].(type) {
	case string:
		m["type"] = []any{typ, "null"}
		return m
	case nil:
		if _, isRef := m["$ref"]; !isRef {
			return m // no type: null is allowed already
		}
	}
	return map[string]any{"anyOf": []any{m, map[string]any{"type": "null"}}}
}

// recursiveTypes returns the struct types reachable from themselves.
func recursiveTypes(root reflect.Type) map[reflect.Type]bool {
	rec := map[reflect.Type]bool{}
	onPath := map[reflect.Type]bool{}
	done := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			visit(t.Elem())
			return
		case reflect.Struct:
		default:
			return
		}
		if t == timeType {
			return
		}
		if onPath[t] {
			rec[t] = true
			return
		}
		if done[t] {
			return
		}
		onPath[t] = true
		for _, f := range Fields(t) {
			visit(f.Type)
		}
		onPath[t] = false
		done[t] = true
	}
	visit(root)
	return rec
}
