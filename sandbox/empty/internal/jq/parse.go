package jq

import (
	"fmt"
	"strconv"
	"strings"
)

// Program is a parsed jq filter.
type Program struct{ root node }

// Parse parses a jq filter.
func Parse(src string) (*Program, error) {
	p := &parser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if len(p.toks) == 1 { // only the end
		return &Program{root: identity{}}, nil
	}
	n, err := p.pipe()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("syntax error: unexpected %s", t)
	}
	return &Program{root: n}, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tPunct
	tIdent
	tKeyword
	tField  // .name or ."name"
	tVar    // $name
	tFormat // @name
	tNum
	tStr // a string, maybe with interpolations
)

type token struct {
	kind  tokKind
	text  string
	num   float64
	parts []strPart // tStr
}

// strPart is literal text, or an interpolated filter's source.
type strPart struct {
	lit  string
	expr node
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tStr:
		return "string"
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	pos  int
}

var keywords = map[string]bool{
	"if": true, "then": true, "elif": true, "else": true, "end": true, "as": true, "def": true,
	"reduce": true, "foreach": true, "try": true, "catch": true, "and": true, "or": true, "label": true,
	"import": true, "include": true,
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func (p *parser) lex() error {
	s := p.src
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"':
			parts, n, err := lexString(s[i:])
			if err != nil {
				return err
			}
			p.toks = append(p.toks, token{kind: tStr, parts: parts})
			i += n
		case c == '.' && i+1 < len(s) && isIdentStart(s[i+1]):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{kind: tField, text: s[i+1 : j]})
			i = j
		case c == '.' && i+1 < len(s) && s[i+1] == '"':
			parts, n, err := lexString(s[i+1:])
			if err != nil {
				return err
			}
			if len(parts) != 1 || parts[0].expr != nil {
				if len(parts) == 0 {
					parts = []strPart{{}}
				} else {
					return fmt.Errorf("syntax error: interpolation in a field name")
				}
			}
			p.toks = append(p.toks, token{kind: tField, text: parts[0].lit})
			i += 1 + n
		case c == '.' && i+1 < len(s) && s[i+1] == '.':
			p.toks = append(p.toks, token{kind: tPunct, text: ".."})
			i += 2
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
				j++
				if j < len(s) && (s[j] == '+' || s[j] == '-') {
					j++
				}
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
			}
			f, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return fmt.Errorf("syntax error: invalid number %q", s[i:j])
			}
			p.toks = append(p.toks, token{kind: tNum, num: f, text: s[i:j]})
			i = j
		case c == '$' || c == '@':
			j := i + 1
			for j < len(s) && (isIdentChar(s[j]) || s[j] == ':' && j+1 < len(s) && s[j+1] == ':') {
				j++
			}
			if j == i+1 {
				return fmt.Errorf("syntax error: %c without a name", c)
			}
			kind := tVar
			if c == '@' {
				kind = tFormat
			}
			p.toks = append(p.toks, token{kind: kind, text: s[i+1 : j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && (isIdentChar(s[j]) || s[j] == ':' && j+1 < len(s) && s[j+1] == ':') {
				j++
			}
			w := s[i:j]
			kind := tIdent
			if keywords[w] {
				kind = tKeyword
			}
			p.toks = append(p.toks, token{kind: kind, text: w})
			i = j
		default:
			for _, op := range []string{"?//", "|=", "+=", "-=", "*=", "/=", "%=", "//=", "==", "!=", "<=", ">=", "//", "|", ",", ".", "[", "]", "{", "}", "(", ")", ":", ";", "=", "<", ">", "+", "-", "*", "/", "%", "?"} {
				if strings.HasPrefix(s[i:], op) {
					p.toks = append(p.toks, token{kind: tPunct, text: op})
					i += len(op)
					goto next
				}
			}
			return fmt.Errorf("syntax error: unexpected character %q", c)
		next:
		}
	}
	p.toks = append(p.toks, token{kind: tEOF})
	return nil
}

// lexString reads a string literal at the start of s: its parts and its
// length in bytes.
func lexString(s string) ([]strPart, int, error) {
	var parts []strPart
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		switch c {
		case '"':
			if b.Len() > 0 || len(parts) == 0 {
				parts = append(parts, strPart{lit: b.String()})
			}
			return parts, i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return nil, 0, fmt.Errorf("syntax error: unfinished string")
			}
			e := s[i+1]
			i += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'u':
				if i+4 > len(s) {
					return nil, 0, fmt.Errorf("syntax error: invalid \\u escape")
				}
				n, err := strconv.ParseUint(s[i:i+4], 16, 32)
				if err != nil {
					return nil, 0, fmt.Errorf("syntax error: invalid \\u escape")
				}
				b.WriteRune(rune(n))
				i += 4
			case '(':
				// Interpolation: up to the matching parenthesis.
				depth, j := 1, i
				for j < len(s) && depth > 0 {
					switch s[j] {
					case '(':
						depth++
					case ')':
						depth--
					case '"':
						_, n, err := lexString(s[j:])
						if err != nil {
							return nil, 0, err
						}
						j += n - 1
					}
					j++
				}
				if depth != 0 {
					return nil, 0, fmt.Errorf("syntax error: unfinished interpolation")
				}
				prog, err := Parse(s[i : j-1])
				if err != nil {
					return nil, 0, err
				}
				if b.Len() > 0 {
					parts = append(parts, strPart{lit: b.String()})
					b.Reset()
				}
				parts = append(parts, strPart{expr: prog.root})
				i = j
			default:
				return nil, 0, fmt.Errorf("syntax error: invalid escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	return nil, 0, fmt.Errorf("syntax error: unfinished string")
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) is(kind tokKind, text string) bool {
	t := p.peek()
	return t.kind == kind && t.text == text
}

func (p *parser) accept(kind tokKind, text string) bool {
	if p.is(kind, text) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(kind tokKind, text string) error {
	if !p.accept(kind, text) {
		return fmt.Errorf("syntax error: want %q, got %s", text, p.peek())
	}
	return nil
}

// pipe: (term as $x |)* comma (| pipe)?; def is refused.
func (p *parser) pipe() (node, error) {
	if p.is(tKeyword, "def") {
		return nil, fmt.Errorf("syntax error: def is not supported by this jq")
	}
	left, err := p.comma()
	if err != nil {
		return nil, err
	}
	if p.accept(tKeyword, "as") {
		t := p.next()
		if t.kind != tVar {
			return nil, fmt.Errorf("syntax error: as wants a $variable")
		}
		if err := p.expect(tPunct, "|"); err != nil {
			return nil, err
		}
		body, err := p.pipe()
		if err != nil {
			return nil, err
		}
		return &asBind{source: left, name: t.text, body: body}, nil
	}
	if p.accept(tPunct, "|") {
		right, err := p.pipe()
		if err != nil {
			return nil, err
		}
		return &pipe{l: left, r: right}, nil
	}
	return left, nil
}

func (p *parser) comma() (node, error) {
	left, err := p.alt()
	if err != nil {
		return nil, err
	}
	for p.accept(tPunct, ",") {
		right, err := p.alt()
		if err != nil {
			return nil, err
		}
		left = &comma{l: left, r: right}
	}
	return left, nil
}

// alt: assign (// alt)?
func (p *parser) alt() (node, error) {
	left, err := p.assign()
	if err != nil {
		return nil, err
	}
	if p.accept(tPunct, "//") {
		right, err := p.alt()
		if err != nil {
			return nil, err
		}
		return &alternative{l: left, r: right}, nil
	}
	return left, nil
}

func (p *parser) assign() (node, error) {
	left, err := p.or()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"|=", "=", "+=", "-=", "*=", "/=", "%=", "//="} {
		if p.accept(tPunct, op) {
			right, err := p.alt()
			if err != nil {
				return nil, err
			}
			return &assignment{op: op, lhs: left, rhs: right}, nil
		}
	}
	return left, nil
}

func (p *parser) or() (node, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.accept(tKeyword, "or") {
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = &logic{and: false, l: left, r: right}
	}
	return left, nil
}

func (p *parser) and() (node, error) {
	left, err := p.compare()
	if err != nil {
		return nil, err
	}
	for p.accept(tKeyword, "and") {
		right, err := p.compare()
		if err != nil {
			return nil, err
		}
		left = &logic{and: true, l: left, r: right}
	}
	return left, nil
}

func (p *parser) compare() (node, error) {
	left, err := p.additive()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if p.accept(tPunct, op) {
			right, err := p.additive()
			if err != nil {
				return nil, err
			}
			return &binop{op: op, l: left, r: right}, nil
		}
	}
	return left, nil
}

func (p *parser) additive() (node, error) {
	left, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for p.is(tPunct, "+") || p.is(tPunct, "-") {
		op := p.next().text
		right, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		left = &binop{op: op, l: left, r: right}
	}
	return left, nil
}

func (p *parser) multiplicative() (node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.is(tPunct, "*") || p.is(tPunct, "/") || p.is(tPunct, "%") {
		op := p.next().text
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = &binop{op: op, l: left, r: right}
	}
	return left, nil
}

func (p *parser) unary() (node, error) {
	if p.accept(tPunct, "-") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &negate{e: e}, nil
	}
	return p.postfix()
}

// postfix: a term and its suffixes: .name, [e], [e:e], [], ?, "as" is
// handled by pipe.
func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch t := p.peek(); {
		case t.kind == tField:
			p.next()
			n = &index{target: n, key: &literal{v: t.text}}
		case t.kind == tPunct && t.text == "." && p.toks[p.pos+1].kind == tPunct && p.toks[p.pos+1].text == "[":
			p.next()
		case t.kind == tPunct && t.text == "[":
			p.next()
			if n, err = p.bracketSuffix(n); err != nil {
				return nil, err
			}
		case t.kind == tPunct && t.text == "?":
			p.next()
			n = &try{body: n}
		default:
			return n, nil
		}
	}
}

// bracketSuffix reads what follows [ after a term: ], e], e:e], :e], e:].
func (p *parser) bracketSuffix(target node) (node, error) {
	if p.accept(tPunct, "]") {
		return &iterate{target: target}, nil
	}
	var from, to node
	var err error
	if !p.is(tPunct, ":") {
		if from, err = p.pipe(); err != nil {
			return nil, err
		}
	}
	if p.accept(tPunct, ":") {
		if !p.is(tPunct, "]") {
			if to, err = p.pipe(); err != nil {
				return nil, err
			}
		}
		if err := p.expect(tPunct, "]"); err != nil {
			return nil, err
		}
		return &slice{target: target, from: from, to: to}, nil
	}
	if err := p.expect(tPunct, "]"); err != nil {
		return nil, err
	}
	return &index{target: target, key: from}, nil
}

func (p *parser) term() (node, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return &literal{v: t.num}, nil
	case tStr:
		return strNode(t.parts, ""), nil
	case tField:
		return &index{target: identity{}, key: &literal{v: t.text}}, nil
	case tVar:
		return &varRef{name: t.text}, nil
	case tFormat:
		if p.peek().kind == tStr {
			return strNode(p.next().parts, t.text), nil
		}
		return &format{name: t.text}, nil
	case tKeyword:
		switch t.text {
		case "if":
			return p.ifExpr()
		case "try":
			body, err := p.postfixNoTry()
			if err != nil {
				return nil, err
			}
			var handler node
			if p.accept(tKeyword, "catch") {
				if handler, err = p.postfixNoTry(); err != nil {
					return nil, err
				}
			}
			return &try{body: body, handler: handler}, nil
		case "reduce", "foreach":
			return p.reduceExpr(t.text)
		}
	case tIdent:
		switch t.text {
		case "true":
			return &literal{v: true}, nil
		case "false":
			return &literal{v: false}, nil
		case "null":
			return &literal{v: nil}, nil
		}
		var args []node
		if p.accept(tPunct, "(") {
			for {
				a, err := p.pipe()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.accept(tPunct, ";") {
					continue
				}
				if err := p.expect(tPunct, ")"); err != nil {
					return nil, err
				}
				break
			}
		}
		return newCall(t.text, args)
	case tPunct:
		switch t.text {
		case ".":
			if p.is(tPunct, "[") {
				p.next()
				return p.bracketSuffix(identity{})
			}
			if p.peek().kind == tStr { // ."key" with a space? treat as .["key"]
				return &index{target: identity{}, key: strNode(p.next().parts, "")}, nil
			}
			return identity{}, nil
		case "..":
			return newCall("recurse", nil)
		case "(":
			e, err := p.pipe()
			if err != nil {
				return nil, err
			}
			return e, p.expect(tPunct, ")")
		case "[":
			if p.accept(tPunct, "]") {
				return &arrayCons{}, nil
			}
			e, err := p.pipe()
			if err != nil {
				return nil, err
			}
			return &arrayCons{e: e}, p.expect(tPunct, "]")
		case "{":
			return p.objectCons()
		}
	}
	return nil, fmt.Errorf("syntax error: unexpected %s", t)
}

// postfixNoTry parses the body of try: a postfix term.
func (p *parser) postfixNoTry() (node, error) { return p.postfix() }

func (p *parser) ifExpr() (node, error) {
	cond, err := p.pipe()
	if err != nil {
		return nil, err
	}
	if err := p.expect(tKeyword, "then"); err != nil {
		return nil, err
	}
	then, err := p.pipe()
	if err != nil {
		return nil, err
	}
	n := &ifNode{cond: cond, then: then}
	switch {
	case p.accept(tKeyword, "elif"):
		if n.els, err = p.ifExpr(); err != nil {
			return nil, err
		}
		return n, nil
	case p.accept(tKeyword, "else"):
		if n.els, err = p.pipe(); err != nil {
			return nil, err
		}
	}
	return n, p.expect(tKeyword, "end")
}

func (p *parser) reduceExpr(kind string) (node, error) {
	source, err := p.postfix()
	if err != nil {
		return nil, err
	}
	if err := p.expect(tKeyword, "as"); err != nil {
		return nil, err
	}
	v := p.next()
	if v.kind != tVar {
		return nil, fmt.Errorf("syntax error: %s wants a $variable", kind)
	}
	if err := p.expect(tPunct, "("); err != nil {
		return nil, err
	}
	init, err := p.pipe()
	if err != nil {
		return nil, err
	}
	if err := p.expect(tPunct, ";"); err != nil {
		return nil, err
	}
	update, err := p.pipe()
	if err != nil {
		return nil, err
	}
	var extract node
	if kind == "foreach" && p.accept(tPunct, ";") {
		if extract, err = p.pipe(); err != nil {
			return nil, err
		}
	}
	if err := p.expect(tPunct, ")"); err != nil {
		return nil, err
	}
	return &reduce{foreach: kind == "foreach", source: source, name: v.text, init: init, update: update, extract: extract}, nil
}

func (p *parser) objectCons() (node, error) {
	o := &objectCons{}
	if p.accept(tPunct, "}") {
		return o, nil
	}
	for {
		var e objEntry
		t := p.next()
		switch {
		case t.kind == tIdent || t.kind == tKeyword:
			e.key = &literal{v: t.text}
		case t.kind == tVar:
			e.key = &literal{v: t.text}
			e.val = &varRef{name: t.text}
		case t.kind == tStr:
			e.key = strNode(t.parts, "")
		case t.kind == tNum:
			e.key = &literal{v: t.text}
		case t.kind == tFormat && p.peek().kind == tStr:
			e.key = strNode(p.next().parts, t.text)
		case t.kind == tPunct && t.text == "(":
			k, err := p.pipe()
			if err != nil {
				return nil, err
			}
			if err := p.expect(tPunct, ")"); err != nil {
				return nil, err
			}
			e.key = k
		default:
			return nil, fmt.Errorf("syntax error: unexpected %s in an object", t)
		}
		if p.accept(tPunct, ":") {
			v, err := p.objectValue()
			if err != nil {
				return nil, err
			}
			e.val = v
		} else if e.val == nil {
			lit, ok := e.key.(*literal)
			if !ok {
				return nil, fmt.Errorf("syntax error: an object key needs a value")
			}
			e.val = &index{target: identity{}, key: lit}
		}
		o.entries = append(o.entries, e)
		if p.accept(tPunct, ",") {
			continue
		}
		return o, p.expect(tPunct, "}")
	}
}

// objectValue is a value of an object construction: no comma (it
// separates entries), but pipes of such terms.
func (p *parser) objectValue() (node, error) {
	left, err := p.alt()
	if err != nil {
		return nil, err
	}
	if p.accept(tPunct, "|") {
		right, err := p.objectValue()
		if err != nil {
			return nil, err
		}
		return &pipe{l: left, r: right}, nil
	}
	return left, nil
}

func strNode(parts []strPart, format string) node {
	if len(parts) == 1 && parts[0].expr == nil {
		return &literal{v: parts[0].lit}
	}
	return &interp{parts: parts, format: format}
}
