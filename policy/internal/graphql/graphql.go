// Package graphql reads the operations of a GraphQL executable document:
// their kinds and names, which is all the policy's GraphQL rules look at.
//
// It accepts exactly the documents github.com/vektah/gqlparser/v2's
// parser.ParseQueryWithTokenLimit accepts (a differential fuzz target holds
// it to that), but builds no syntax tree: linking gqlparser cost the module
// ~45 KB gzip, this package ~12 KB. Only its errors' wording differs.
package graphql

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Kinds of operation.
const (
	Query        = "query"
	Mutation     = "mutation"
	Subscription = "subscription"
)

// maxDepth bounds the nesting of selection sets, list and object values and
// list types together, as gqlparser's MaxNestingDepth does.
const maxDepth = 1000

// Operation is one operation definition of a document.
type Operation struct {
	Kind string // Query, Mutation or Subscription
	Name string // empty for an anonymous operation
}

// Operations parses doc and returns its operations in document order. A
// document of more than maxTokens tokens (comments included) is refused;
// maxTokens 0 means no limit.
func Operations(doc string, maxTokens int) ([]Operation, error) {
	p := &parser{lx: lexer{src: doc}, maxTokens: maxTokens}
	p.advance()
	var ops []Operation
	for p.err == nil && p.tok.kind != tokEOF {
		described := p.tok.kind == tokString || p.tok.kind == tokBlockString
		if described {
			p.advance()
		}
		switch {
		case p.tok.kind == tokBrace && !described:
			ops = append(ops, Operation{Kind: Query})
			p.selectionSet()
		case p.tok.kind == tokName && (p.tok.value == Query || p.tok.value == Mutation || p.tok.value == Subscription):
			ops = append(ops, p.operation())
		case p.tok.kind == tokName && p.tok.value == "fragment":
			p.fragmentDefinition()
		default:
			p.unexpected()
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return ops, nil
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokName
	tokNumber
	tokString
	tokBlockString
	tokBang
	tokDollar
	tokAmp
	tokParen    // (
	tokParenR   // )
	tokSpread   // ...
	tokColon    // :
	tokEquals   // =
	tokAt       // @
	tokBracket  // [
	tokBracketR // ]
	tokBrace    // {
	tokBraceR   // }
	tokPipe     // |
	tokComment  // skipped, but counted against the token limit
)

type token struct {
	kind  tokKind
	value string // a name's text, a string's value
	pos   int
}

type parser struct {
	lx        lexer
	tok       token
	err       error
	tokens    int
	maxTokens int
	depth     int
}

// advance moves to the next token that is not a comment.
func (p *parser) advance() {
	for p.err == nil {
		t, err := p.lx.next()
		if err != nil {
			p.err = err
			return
		}
		if t.kind != tokEOF {
			p.tokens++
			if p.maxTokens != 0 && p.tokens > p.maxTokens {
				p.err = fmt.Errorf("graphql: more than %d tokens", p.maxTokens)
				return
			}
		}
		p.tok = t
		if t.kind != tokComment {
			return
		}
	}
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("graphql: offset %d: "+format, append([]any{p.tok.pos}, args...)...)
	}
}

func (p *parser) unexpected() { p.fail("unexpected token") }

// skip consumes the current token if it is of kind k.
func (p *parser) skip(k tokKind) bool {
	if p.err != nil || p.tok.kind != k {
		return false
	}
	p.advance()
	return true
}

func (p *parser) expect(k tokKind) {
	if !p.skip(k) {
		p.unexpected()
	}
}

func (p *parser) name() string {
	v := p.tok.value
	p.expect(tokName)
	return v
}

// some parses one or more items between open and close, if open is next.
func (p *parser) some(open, close tokKind, item func()) {
	if !p.skip(open) {
		return
	}
	if p.err == nil && p.tok.kind == close {
		p.fail("empty list")
		return
	}
	for p.err == nil && p.tok.kind != close {
		item()
	}
	p.skip(close)
}

// many parses zero or more items between open and close.
func (p *parser) many(open, close tokKind, item func()) {
	p.expect(open)
	for p.err == nil && p.tok.kind != close {
		item()
	}
	p.skip(close)
}

func (p *parser) enter() bool {
	if p.depth >= maxDepth {
		p.fail("nesting deeper than %d", maxDepth)
		return false
	}
	p.depth++
	return true
}

func (p *parser) operation() Operation {
	op := Operation{Kind: p.tok.value}
	p.advance()
	if p.tok.kind == tokName {
		op.Name = p.tok.value
		p.advance()
	}
	p.variableDefinitions()
	p.directives(false)
	p.requiredSelectionSet()
	return op
}

func (p *parser) fragmentDefinition() {
	p.advance() // "fragment"
	p.fragmentName()
	p.variableDefinitions()
	if p.err == nil && (p.tok.kind != tokName || p.tok.value != "on") {
		p.unexpected()
	}
	p.advance()
	p.name()
	p.directives(false)
	p.requiredSelectionSet()
}

func (p *parser) fragmentName() {
	if p.tok.value == "on" {
		p.unexpected()
		return
	}
	p.name()
}

func (p *parser) variableDefinitions() {
	p.some(tokParen, tokParenR, func() {
		if p.tok.kind == tokString || p.tok.kind == tokBlockString {
			p.advance() // a description
		}
		p.expect(tokDollar)
		p.name()
		p.expect(tokColon)
		p.typeReference()
		if p.skip(tokEquals) {
			p.value(true)
		}
		p.directives(false)
	})
}

func (p *parser) typeReference() {
	if p.skip(tokBracket) {
		if !p.enter() {
			return
		}
		p.typeReference()
		p.expect(tokBracketR)
		p.depth--
	} else {
		p.name()
	}
	p.skip(tokBang)
}

func (p *parser) requiredSelectionSet() {
	if p.err == nil && p.tok.kind != tokBrace {
		p.unexpected()
		return
	}
	p.selectionSet()
}

func (p *parser) selectionSet() {
	if !p.enter() {
		return
	}
	p.some(tokBrace, tokBraceR, p.selection)
	p.depth--
}

func (p *parser) selection() {
	if p.tok.kind != tokSpread {
		p.name() // the alias or the name
		if p.skip(tokColon) {
			p.name()
		}
		p.arguments(false)
		p.directives(false)
		if p.err == nil && p.tok.kind == tokBrace {
			p.selectionSet()
		}
		return
	}
	p.advance() // ...
	if p.tok.kind == tokName && p.tok.value != "on" {
		p.fragmentName()
		p.directives(false)
		return
	}
	// gqlparser compares the value alone, so a string "on" also opens a
	// type condition.
	if p.tok.value == "on" {
		p.advance()
		p.name()
	}
	p.directives(false)
	p.requiredSelectionSet()
}

func (p *parser) arguments(isConst bool) {
	p.some(tokParen, tokParenR, func() {
		p.name()
		p.expect(tokColon)
		p.value(isConst)
	})
}

func (p *parser) directives(isConst bool) {
	for p.err == nil && p.tok.kind == tokAt {
		p.advance()
		p.name()
		p.arguments(isConst)
	}
}

func (p *parser) value(isConst bool) {
	if p.err != nil {
		return
	}
	switch p.tok.kind {
	case tokBracket:
		if p.enter() {
			p.many(tokBracket, tokBracketR, func() { p.value(isConst) })
			p.depth--
		}
	case tokBrace:
		if p.enter() {
			p.many(tokBrace, tokBraceR, func() {
				p.name()
				p.expect(tokColon)
				p.value(isConst)
			})
			p.depth--
		}
	case tokDollar:
		if isConst {
			p.unexpected()
			return
		}
		p.advance()
		p.name()
	case tokNumber, tokString, tokBlockString, tokName:
		p.advance()
	default:
		p.unexpected()
	}
}

// lexer splits a document into tokens as gqlparser's lexer does.
type lexer struct {
	src string
	pos int
}

var errUnterminated = errors.New("graphql: unterminated string")

func (l *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("graphql: offset %d: "+format, append([]any{l.pos}, args...)...)
}

func (l *lexer) next() (token, error) {
	l.space()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	l.pos++
	if k := punctuators[c]; k != tokEOF {
		return token{kind: k, pos: start}, nil
	}
	switch {
	case c == '.' && strings.HasPrefix(l.src[start:], "..."):
		l.pos += 2
		return token{kind: tokSpread, pos: start}, nil
	case c == '#':
		for l.pos < len(l.src) {
			r, w := utf8.DecodeRuneInString(l.src[l.pos:])
			if r < 0x20 && r != '\t' {
				break
			}
			l.pos += w
		}
		return token{kind: tokComment, pos: start}, nil
	case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		for l.pos < len(l.src) && isNameByte(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokName, value: l.src[start:l.pos], pos: start}, nil
	case c == '-' || '0' <= c && c <= '9':
		l.pos--
		return l.number()
	case c == '"' && strings.HasPrefix(l.src[start:], `"""`):
		l.pos += 2
		return l.blockString(start)
	case c == '"':
		return l.str(start)
	}
	l.pos--
	return token{}, l.errorf("unexpected character %q", c)
}

// punctuators maps a byte to its token kind, tokEOF for none.
var punctuators = [256]tokKind{
	'!': tokBang, '$': tokDollar, '&': tokAmp, '(': tokParen, ')': tokParenR,
	':': tokColon, '=': tokEquals, '@': tokAt, '[': tokBracket, ']': tokBracketR,
	'{': tokBrace, '}': tokBraceR, '|': tokPipe,
}

func isNameByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// space skips white space, commas, line terminators and byte order marks.
func (l *lexer) space() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case '\t', ' ', ',', '\n', '\r':
			l.pos++
		case 0xef:
			if !strings.HasPrefix(l.src[l.pos:], "\ufeff") {
				return
			}
			l.pos += 3
		default:
			return
		}
	}
}

func (l *lexer) digits() int {
	n := 0
	for l.pos < len(l.src) && '0' <= l.src[l.pos] && l.src[l.pos] <= '9' {
		l.pos++
		n++
	}
	return n
}

func (l *lexer) accept(set string) bool {
	if l.pos < len(l.src) && strings.IndexByte(set, l.src[l.pos]) >= 0 {
		l.pos++
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; like
// gqlparser's, it does not look at what follows.
func (l *lexer) number() (token, error) {
	start := l.pos
	l.accept("-")
	if l.accept("0") {
		if l.digits() != 0 {
			return token{}, l.errorf("digit after 0 in a number")
		}
	} else if l.digits() == 0 {
		return token{}, l.errorf("no digit in a number")
	}
	if l.accept(".") && l.digits() == 0 {
		return token{}, l.errorf("no digit after the decimal point")
	}
	if l.accept("eE") {
		l.accept("+-")
		if l.digits() == 0 {
			return token{}, l.errorf("no digit in an exponent")
		}
	}
	return token{kind: tokNumber, pos: start}, nil
}

// str reads a quoted string; l.pos is past the opening quote.
func (l *lexer) str(start int) (token, error) {
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n' || c == '\r':
			return token{}, errUnterminated
		case c < 0x20 && c != '\t':
			return token{}, l.errorf("control character in a string")
		case c == '"':
			l.pos++
			return token{kind: tokString, value: b.String(), pos: start}, nil
		case c == '\\':
			r, n, ok := unescape(l.src[l.pos:])
			if !ok {
				return token{}, l.errorf("invalid escape sequence")
			}
			b.WriteRune(r)
			l.pos += n
		default:
			r, w := utf8.DecodeRuneInString(l.src[l.pos:])
			b.WriteRune(r)
			l.pos += w
		}
	}
	return token{}, errUnterminated
}

// unescape reads the escape sequence at the start of s, which begins with a
// backslash, and returns its rune and length.
func unescape(s string) (rune, int, bool) {
	if len(s) < 2 {
		return 0, 0, false
	}
	if i := strings.IndexByte(`"/\bfnrt`, s[1]); i >= 0 {
		return rune("\"/\\\b\f\n\r\t"[i]), 2, true
	}
	if s[1] != 'u' {
		return 0, 0, false
	}
	if len(s) > 2 && s[2] == '{' {
		// \u{X…}: one to eight hex digits naming a Unicode scalar value.
		var v rune
		for n := 3; n < len(s) && n <= 11; n++ {
			if s[n] == '}' {
				if n == 3 || !utf8.ValidRune(v) {
					return 0, 0, false
				}
				return v, n + 1, true
			}
			d, ok := hexDigit(s[n])
			if !ok {
				return 0, 0, false
			}
			v = v<<4 | d
		}
		return 0, 0, false
	}
	// \uXXXX needs a character after it (the closing quote at least).
	if len(s) <= 6 {
		return 0, 0, false
	}
	v, ok := hex4(s[2:6])
	if !ok {
		return 0, 0, false
	}
	// A leading surrogate and an escaped trailing one are one code point.
	if v >= 0xd800 && v < 0xdc00 && len(s) > 12 && s[6] == '\\' && s[7] == 'u' {
		if w, ok := hex4(s[8:12]); ok && w >= 0xdc00 && w <= 0xdfff {
			return utf16.DecodeRune(v, w), 12, true
		}
	}
	return v, 6, true
}

func hex4(s string) (rune, bool) {
	var v rune
	for i := 0; i < 4; i++ {
		d, ok := hexDigit(s[i])
		if !ok {
			return 0, false
		}
		v = v<<4 | d
	}
	return v, true
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}

// blockString reads a """block string"""; l.pos is past the opening quotes.
func (l *lexer) blockString(start int) (token, error) {
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == '"' {
			n := 1
			for l.pos+n < len(l.src) && l.src[l.pos+n] == '"' {
				n++
			}
			if n >= 3 {
				// The last three quotes close the string.
				b.WriteString(strings.Repeat(`"`, n-3))
				l.pos += n
				return token{kind: tokBlockString, value: blockValue(b.String()), pos: start}, nil
			}
		}
		switch {
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			return token{}, l.errorf("control character in a string")
		case strings.HasPrefix(l.src[l.pos:], `\"""`):
			b.WriteString(`"""`)
			l.pos += 4
		case c == '\r':
			b.WriteByte('\n')
			l.pos++
			if l.pos < len(l.src) && l.src[l.pos] == '\n' {
				l.pos++
			}
		default:
			r, w := utf8.DecodeRuneInString(l.src[l.pos:])
			b.WriteRune(r)
			l.pos += w
		}
	}
	return token{}, errUnterminated
}

// blockValue removes a block string's common indentation and its leading
// and trailing blank lines. Like gqlparser, and unlike the specification,
// it counts the first line's indentation too.
func blockValue(raw string) string {
	lines := strings.Split(raw, "\n")
	indent := -1
	for _, line := range lines {
		if n, blank := leadingSpace(line); !blank && (indent < 0 || n < indent) {
			indent = n
		}
	}
	if indent > 0 {
		for i := 1; i < len(lines); i++ {
			if len(lines[i]) < indent {
				lines[i] = ""
			} else {
				lines[i] = lines[i][indent:]
			}
		}
	}
	for len(lines) > 0 {
		if _, blank := leadingSpace(lines[0]); !blank {
			break
		}
		lines = lines[1:]
	}
	for len(lines) > 0 {
		if _, blank := leadingSpace(lines[len(lines)-1]); !blank {
			break
		}
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// leadingSpace returns the number of spaces and tabs line starts with, and
// whether that is all of it.
func leadingSpace(line string) (int, bool) {
	n := len(line) - len(strings.TrimLeft(line, " \t"))
	return n, n == len(line)
}
