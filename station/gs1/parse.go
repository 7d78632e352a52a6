package gs1

import (
	"strings"
	"time"
)

// GS is the ASCII group separator a scanner sends for FNC1 in the middle
// of a GS1 symbol (GenSpecs 7.8.5: FNC1 used as a separator is transmitted as
// <GS>, 0x1D).
const GS = '\x1d'

// Form says how GS1 data was written.
type Form string

// The forms Parse recognises.
const (
	// FormElementString is the concatenated AIs of a GS1 symbol, with GS as
	// the FNC1 separator.
	FormElementString Form = "element-string"
	// FormBracketed is the human-readable interpretation "(01)…(21)…".
	FormBracketed Form = "bracketed"
	// FormDigitalLink is a GS1 Digital Link URI.
	FormDigitalLink Form = "digital-link"
	// FormEANUPC is a bare GTIN from an EAN/UPC or ITF-14 symbol.
	FormEANUPC Form = "ean-upc"
)

// Element is one AI and its value.
type Element struct {
	AI    string
	Value string
	// Pos is the byte offset of the element in the parsed input.
	Pos int
}

// Result is parsed GS1 data: its AIs in the order they came.
type Result struct {
	// Symbology is the AIM symbology identifier the data came with ("]d2"),
	// or "".
	Symbology string
	Form      Form
	Elements  []Element

	buf     [6]Element // backing array for the common case: one allocation per parse
	refYear int
	now     func() time.Time
}

// Lookup returns the value of the first element with the given AI.
func (r *Result) Lookup(ai string) (string, bool) {
	for _, e := range r.Elements {
		if e.AI == ai {
			return e.Value, true
		}
	}
	return "", false
}

// Bracketed renders the human-readable form "(01)09506000134352(21)ABC";
// a "(" inside a value is written "\(" so the form parses back.
func (r *Result) Bracketed() string {
	var b strings.Builder
	for _, e := range r.Elements {
		b.WriteByte('(')
		b.WriteString(e.AI)
		b.WriteByte(')')
		if strings.IndexByte(e.Value, '(') < 0 {
			b.WriteString(e.Value)
			continue
		}
		for i := 0; i < len(e.Value); i++ {
			if e.Value[i] == '(' {
				b.WriteByte('\\')
			}
			b.WriteByte(e.Value[i])
		}
	}
	return b.String()
}

// ElementString renders the elements as a GS1 symbol carries them, with
// GS as FNC1 after every element whose AI is not of predefined length,
// except the last (GenSpecs 7.8.5). It has no symbology identifier.
func (r *Result) ElementString() string {
	var b strings.Builder
	for i, e := range r.Elements {
		b.WriteString(e.AI)
		b.WriteString(e.Value)
		if i < len(r.Elements)-1 {
			if d := dict.exact(e.AI); d == nil || !d.predefined {
				b.WriteByte(GS)
			}
		}
	}
	return b.String()
}

// Date returns the date held by a date AI such as (17) or (11), or by the
// date part of (7003), (4324), (8008) …: two-digit years are placed in a
// century by GenSpecs 7.12 against the parse time, and DD = 00 gives the
// last day of the month.
func (r *Result) Date(ai string) (time.Time, bool) {
	v, found := r.Lookup(ai)
	d := dict.exact(ai)
	if !found || d == nil {
		return time.Time{}, false
	}
	ref := r.refYear
	if ref == 0 {
		now := r.now
		if now == nil {
			now = time.Now
		}
		ref = now().Year()
	}
	for _, l := range d.comps[0].linters {
		switch l.name {
		case "yymmd0", "yymmdd":
			if len(v) >= 6 {
				return dateOf(v[:6], ref)
			}
		case "yyyymmd0", "yyyymmdd":
			if len(v) >= 8 {
				return dateOf(v[:8], ref)
			}
		}
	}
	return time.Time{}, false
}

// ParseDate decodes a GS1 date, YYMMDD or YYYYMMDD; DD = 00 means the last
// day of the month. Two-digit years are placed by the sliding century
// window of GenSpecs 7.12 around now's year.
func ParseDate(v string, now time.Time) (time.Time, bool) {
	return dateOf(v, now.Year())
}

func dateOf(v string, ref int) (time.Time, bool) {
	if (len(v) != 6 && len(v) != 8) || !allDigits(v) {
		return time.Time{}, false
	}
	var y int
	if len(v) == 6 {
		y = resolveYear(digits2(v, 0), ref)
	} else {
		y = digits2(v, 0)*100 + digits2(v, 2)
	}
	t := v[len(v)-4:]
	m, d := digits2(t, 0), digits2(t, 2)
	if m < 1 || m > 12 || d > daysIn(y, m) {
		return time.Time{}, false
	}
	if d == 0 {
		d = daysIn(y, m)
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), true
}

// Parser parses GS1 data. The zero value is ready to use.
type Parser struct {
	// Now gives the reference time for two-digit years (GenSpecs 7.12);
	// nil means time.Now.
	Now func() time.Time
	// SkipPairing turns off the req/ex and duplicate checks. GenSpecs
	// 4.14 applies them to the data of all symbols on an item together, so
	// a caller that merges several scans checks the merged result with
	// CheckPairs instead.
	SkipPairing bool
}

// Parse parses with the zero Parser.
func Parse(data string) (*Result, error) { return Parser{}.Parse(data) }

// ParseBracketed parses the bracketed form with the zero Parser.
func ParseBracketed(s string) (*Result, error) { return Parser{}.ParseBracketed(s) }

// ParseDigitalLink parses a GS1 Digital Link URI with the zero Parser.
func ParseDigitalLink(uri string) (*Result, error) { return Parser{}.ParseDigitalLink(uri) }

// state is one parse in progress.
type state struct {
	now    func() time.Time
	year   int
	errs   Errors
	broken bool // the structure could not be followed to the end
}

func (s *state) fail(code, ai string, pos int, msg string) {
	s.errs = append(s.errs, &Error{Code: code, AI: ai, Pos: pos, Msg: msg})
}

func (s *state) refYear() int {
	if s.year == 0 {
		s.year = s.now().Year()
	}
	return s.year
}

func (p Parser) begin() (*Result, *state) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	r := &Result{now: now}
	r.Elements = r.buf[:0]
	return r, &state{now: now}
}

func (p Parser) finish(r *Result, s *state) (*Result, error) {
	if !s.broken && !p.SkipPairing {
		s.errs = append(s.errs, CheckPairs(r.Elements)...)
	}
	r.refYear = s.year
	if len(s.errs) == 0 {
		return r, nil
	}
	return r, s.errs
}

// Parse parses one scan of GS1 data in any form a scanner or a person
// produces: an element string with or without an AIM symbology identifier
// ("]d2011234…", FNC1 sent as GS), the bracketed form "(01)…(17)…", a
// GS1 Digital Link URI, or the bare GTIN of an EAN/UPC or ITF-14 symbol
// (recognised by its symbology identifier). It checks every value against
// the Barcode Syntax Dictionary (length, character set, check digits,
// dates, code lists) and the AIs' pairing rules.
//
// The Result is never nil: it holds what could be parsed. The error is
// nil or Errors, every problem found.
func (p Parser) Parse(data string) (*Result, error) {
	r, s := p.begin()
	sym, body := SplitAIM(data)
	r.Symbology = sym
	off := len(sym)
	switch {
	case body == "":
		s.fail(CodeEmpty, "", off, "no data")
		s.broken = true
	case isHTTP(body):
		r.Form = FormDigitalLink
		p.digitalLink(data, off, r, s)
	case body[0] == '(':
		r.Form = FormBracketed
		p.bracketed(data, off, r, s)
	case isEANUPC(sym):
		r.Form = FormEANUPC
		p.gtinOnly(data, off, r, s)
	case sym != "" && !isGS1Symbology(sym):
		s.fail(CodeNotGS1, "", 0, "symbology "+sym+" does not carry GS1 data")
		s.broken = true
	default:
		r.Form = FormElementString
		p.elementString(data, off, r, s)
	}
	return p.finish(r, s)
}

// ParseBracketed parses the human-readable form "(01)09506000134352(21)A\(1"
// where "\(" stands for a "(" in a value.
func (p Parser) ParseBracketed(str string) (*Result, error) {
	r, s := p.begin()
	r.Form = FormBracketed
	if str == "" {
		s.fail(CodeEmpty, "", 0, "no data")
		s.broken = true
	} else {
		p.bracketed(str, 0, r, s)
	}
	return p.finish(r, s)
}

// ParseDigitalLink parses a GS1 Digital Link URI into its AIs.
func (p Parser) ParseDigitalLink(uri string) (*Result, error) {
	r, s := p.begin()
	r.Form = FormDigitalLink
	p.digitalLink(uri, 0, r, s)
	return p.finish(r, s)
}

// SplitAIM splits an AIM symbology identifier (ISO/IEC 15424: "]", a code
// character, a modifier) off the front of data. Data without one is
// returned unchanged with "".
func SplitAIM(data string) (symbology, rest string) {
	if len(data) < 3 || data[0] != ']' || !isAlpha(data[1]) || !isAlnum(data[2]) {
		return "", data
	}
	return data[:3], data[3:]
}

func isAlpha(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

// isGS1Symbology reports whether the symbology identifier announces GS1
// element strings (FNC1 in first position): GS1-128 ]C1, GS1 DataBar and
// Composite ]e0-]e3, GS1 DataMatrix ]d2 (and ]d5 with ECI), GS1 QR Code
// ]Q3 (]Q4 with ECI), GS1 DotCode ]J1 (ISO/IEC 15424 and the symbology standards).
func isGS1Symbology(sym string) bool {
	switch sym {
	case "]C1", "]e0", "]e1", "]e2", "]e3", "]d2", "]d5", "]Q3", "]Q4", "]J1":
		return true
	}
	return false
}

// IsGS1Symbology reports whether an AIM symbology identifier announces
// GS1 data (including the EAN/UPC and ITF-14 GTIN carriers).
func IsGS1Symbology(sym string) bool { return isGS1Symbology(sym) || isEANUPC(sym) }

// isEANUPC reports symbologies that carry a bare GTIN: EAN-13/UPC-A ]E0,
// EAN-13 with add-on ]E3, EAN-8 ]E4, ITF ]I0/]I1 (ITF-14).
func isEANUPC(sym string) bool {
	switch sym {
	case "]E0", "]E3", "]E4", "]I0", "]I1":
		return true
	}
	return false
}

func isHTTP(s string) bool {
	return hasPrefixFold(s, "https://") || hasPrefixFold(s, "http://")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// gtinOnly turns the digits of an EAN/UPC or ITF-14 symbol into AI (01),
// left-padded to 14 digits (a GTIN-8, -12 or -13 is processed as a
// 14-digit field with leading zeros, as AI (01) carries it).
func (p Parser) gtinOnly(data string, off int, r *Result, s *state) {
	v := data[off:]
	if r.Symbology == "]E3" && (len(v) == 15 || len(v) == 18) {
		v = v[:13] // the 2- or 5-digit add-on is not part of the GTIN
	}
	switch len(v) {
	case 8, 12, 13, 14:
	default:
		s.fail(CodeTooShort, "01", off, "a GTIN has 8, 12, 13 or 14 digits")
		s.broken = true
		return
	}
	if !allDigits(v) {
		s.fail(CodeBadCharset, "01", off, "a GTIN has only digits")
		s.broken = true
		return
	}
	pad := 14 - len(v)
	v = strings.Repeat("0", pad) + v
	r.Elements = append(r.Elements, Element{AI: "01", Value: v, Pos: off})
	n := len(s.errs)
	s.validate(dict.exact("01"), v, off-pad)
	for _, e := range s.errs[n:] {
		e.Pos = max(e.Pos, off) // positions in the padding point at the first digit
	}
}

// elementString parses concatenated AIs (GenSpecs 7.8.5): an AI of
// predefined length is followed directly by the next AI; any other value
// runs to the next GS or the end of the data.
func (p Parser) elementString(data string, i int, r *Result, s *state) {
	for i < len(data) {
		if data[i] == GS {
			// A leading FNC1, a redundant one after a predefined-length AI
			// or a trailing one: some printers emit them and GenSpecs 7.8.5
			// lets a reader ignore them.
			i++
			continue
		}
		d, n := dict.lookup(data[i:])
		if d == nil {
			s.fail(CodeUnknownAI, "", i, "no AI starts with "+quotePrefix(data[i:], 4))
			s.broken = true
			return
		}
		vs := i + n
		var ve int
		if d.predefined {
			ve = vs + d.maxLen
			if ve > len(data) {
				s.fail(CodeTooShort, d.ai, vs, "needs "+itoa(d.maxLen)+" characters, has "+itoa(len(data)-vs))
				s.broken = true
				return
			}
			if g := strings.IndexByte(data[vs:ve], GS); g >= 0 {
				s.fail(CodeTooShort, d.ai, vs+g, "needs "+itoa(d.maxLen)+" characters, has "+itoa(g))
				s.broken = true
				return
			}
		} else {
			ve = len(data)
			if g := strings.IndexByte(data[vs:], GS); g >= 0 {
				ve = vs + g
			}
		}
		if vs == ve {
			s.fail(CodeTooShort, d.ai, vs, "AI without data")
			s.broken = true
		} else {
			v := data[vs:ve]
			r.Elements = append(r.Elements, Element{AI: d.ai, Value: v, Pos: i})
			s.validate(d, v, vs)
		}
		i = ve
	}
	if len(r.Elements) == 0 && !s.broken {
		s.fail(CodeEmpty, "", i, "no AIs")
		s.broken = true
	}
}

// bracketed parses "(AI)value(AI)value…" starting at data[i].
func (p Parser) bracketed(data string, i int, r *Result, s *state) {
	for i < len(data) {
		if data[i] != '(' {
			s.fail(CodeSyntax, "", i, "expected \"(\" and an AI")
			s.broken = true
			return
		}
		end := strings.IndexByte(data[i:], ')')
		if end < 0 {
			s.fail(CodeSyntax, "", i, "\"(\" without \")\"")
			s.broken = true
			return
		}
		ai := data[i+1 : i+end]
		if len(ai) < 2 || len(ai) > 4 || !allDigits(ai) {
			s.fail(CodeSyntax, "", i+1, "an AI is 2 to 4 digits, not "+quotePrefix(ai, 8))
			s.broken = true
			return
		}
		d := dict.exact(ai)
		if d == nil {
			s.fail(CodeUnknownAI, ai, i+1, "("+ai+") is not an AI")
			s.broken = true
			return
		}
		vs := i + end + 1
		v, next := bracketValue(data, vs)
		if v == "" {
			s.fail(CodeTooShort, ai, vs, "AI without data")
			s.broken = true
		} else {
			r.Elements = append(r.Elements, Element{AI: d.ai, Value: v, Pos: i})
			s.validate(d, v, vs)
		}
		i = next
	}
}

// bracketValue reads a value up to the next unescaped "(", turning "\("
// into "(". It allocates only when there is an escape.
func bracketValue(data string, i int) (string, int) {
	j := i
	escaped := false
	for j < len(data) && data[j] != '(' {
		if data[j] == '\\' && j+1 < len(data) && data[j+1] == '(' {
			escaped = true
			j += 2
			continue
		}
		j++
	}
	if !escaped {
		return data[i:j], j
	}
	return strings.ReplaceAll(data[i:j], `\(`, "("), j
}

func quotePrefix(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// validate checks one value against its AI's specification: the
// components in order, each for length, character set and linters
// (dictionary header: "each component … consuming prefixes of the
// prescribed length").
func (s *state) validate(d *aiDef, v string, pos int) {
	p := 0
	for _, c := range d.comps {
		if c.optional && p == len(v) {
			break
		}
		rest := len(v) - p
		var part string
		if c.min == c.max {
			if rest < c.min {
				s.fail(CodeTooShort, d.ai, pos+p, "needs "+itoa(d.minLen)+lengthRange(d)+" characters, has "+itoa(len(v)))
				return
			}
			part = v[p : p+c.min]
		} else {
			part = v[p:]
			if len(part) > c.max {
				s.fail(CodeTooLong, d.ai, pos+p+c.max, "at most "+itoa(d.maxLen)+" characters, has "+itoa(len(v)))
				return
			}
			if len(part) < c.min {
				s.fail(CodeTooShort, d.ai, pos+p, "needs "+itoa(d.minLen)+lengthRange(d)+" characters, has "+itoa(len(v)))
				return
			}
		}
		if i, msg := checkCharset(c.cset, part); i >= 0 {
			s.fail(CodeBadCharset, d.ai, pos+p+i, msg)
		} else {
			for _, l := range c.linters {
				year := 0
				if l.year {
					year = s.refYear()
				}
				if e := l.fn(part, year); e.code != "" {
					s.fail(e.code, d.ai, pos+p+e.off, e.msg)
					break
				}
			}
		}
		p += len(part)
	}
	if p < len(v) {
		s.fail(CodeTooLong, d.ai, pos+p, "at most "+itoa(d.maxLen)+" characters, has "+itoa(len(v)))
	}
}

func lengthRange(d *aiDef) string {
	if d.maxLen == d.minLen {
		return ""
	}
	return " to " + itoa(d.maxLen)
}

// cset82Table is GS1 AI encodable character set 82 (GenSpecs 7.11).
var cset82Table = func() (t [256]bool) {
	for _, c := range []byte("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz") {
		t[c] = true
	}
	return t
}()

func isBase64URL(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_'
}

// checkCharset returns the index of the first character outside the set,
// or -1. N is digits, X CSET 82, Y CSET 39 (digits, capitals, "#-/",
// GenSpecs 7.11), Z CSET 64 (base64url with "=" padding only at the end,
// GenSpecs 7.11).
func checkCharset(cset byte, v string) (int, string) {
	switch cset {
	case 'N':
		for i := 0; i < len(v); i++ {
			if !isDigit(v[i]) {
				return i, "only digits are allowed here"
			}
		}
	case 'X':
		for i := 0; i < len(v); i++ {
			if !cset82Table[v[i]] {
				return i, "character outside GS1 character set 82"
			}
		}
	case 'Y':
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !isDigit(c) && (c < 'A' || c > 'Z') && c != '#' && c != '-' && c != '/' {
				return i, "character outside GS1 character set 39"
			}
		}
	case 'Z':
		n := len(strings.TrimRight(v, "="))
		if pads := len(v) - n; pads > 2 || pads > 0 && len(v)%3 != 0 {
			return n, "bad base64url padding"
		}
		for i := 0; i < n; i++ {
			if !isBase64URL(v[i]) {
				return i, "character outside GS1 character set 64"
			}
		}
	}
	return -1, ""
}

// CheckPairs applies GenSpecs 4.14 to a set of elements: an AI may repeat
// only with the same value, each AI's "req" rules need their partners
// present, and no two AIs may be "ex"clusive of each other. Callers that
// merge the scans of several symbols on one item check the merged set.
func CheckPairs(els []Element) Errors {
	var errs Errors
	for i, e := range els {
		d := dict.exact(e.AI)
		if d == nil {
			continue
		}
		repeat := false
		for _, o := range els[:i] {
			if o.AI == e.AI {
				repeat = true
				if o.Value != e.Value {
					errs = append(errs, &Error{Code: CodeDuplicateAI, AI: e.AI, Pos: e.Pos,
						Msg: "appears twice with different values"})
				}
				break
			}
		}
		if repeat {
			continue // the rules were applied to its first occurrence
		}
		for _, alts := range d.req {
			if !satisfied(alts, els) {
				errs = append(errs, &Error{Code: CodeMissingRequired, AI: e.AI, Pos: e.Pos,
					Msg: "requires " + describeReq(alts)})
			}
		}
		for _, pt := range d.ex {
			for j, o := range els {
				if o.AI == e.AI || !pt.match(o.AI) {
					continue
				}
				if j < i && excludes(o.AI, e.AI) {
					continue // already reported from the other side
				}
				errs = append(errs, &Error{Code: CodeExcludedPair, AI: e.AI, Pos: e.Pos,
					Msg: "must not appear with (" + o.AI + ")"})
				break
			}
		}
	}
	return errs
}

func excludes(a, b string) bool {
	d := dict.exact(a)
	if d == nil {
		return false
	}
	for _, pt := range d.ex {
		if pt.match(b) {
			return true
		}
	}
	return false
}

func satisfied(alts [][]pattern, els []Element) bool {
	for _, group := range alts {
		all := true
		for _, pt := range group {
			found := false
			for _, o := range els {
				if pt.match(o.AI) {
					found = true
					break
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func describeReq(alts [][]pattern) string {
	var b strings.Builder
	for i, group := range alts {
		switch {
		case i == 0:
		case i == len(alts)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		for j, pt := range group {
			if j > 0 {
				b.WriteString(" with ")
			}
			b.WriteString("(" + string(pt) + ")")
		}
	}
	return b.String()
}
