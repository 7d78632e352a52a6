package label

import (
	"errors"
	"fmt"
	"strings"
)

// Values fill a template's placeholders for one label.
type Values struct {
	Serial string
	// GTIN goes into (01); a GTIN-8, -12 or -13 is padded with leading
	// zeros to the 14 digits (01) always holds.
	GTIN string
	// Product is a name or SKU, for text only.
	Product string
	Lot     string
	// Expiry is the (17) date, YYMMDD.
	Expiry string
	// Reprint marks a label printed again for a serial already issued:
	// {reprint} reads REPRINT.
	Reprint bool
}

// ReprintMark is what {reprint} renders on a reprint.
const ReprintMark = "REPRINT"

type placeholder int

const (
	literal placeholder = iota
	phSerial
	phGTIN
	phProduct
	phLot
	phExpiry
	phGS1
	phGS1Data
	phReprint
)

var phNames = [...]string{
	literal: "literal", phSerial: "serial", phGTIN: "gtin", phProduct: "product", phLot: "lot",
	phExpiry: "expiry", phGS1: "gs1", phGS1Data: "gs1_data", phReprint: "reprint",
}

func (p placeholder) String() string { return phNames[p] }

func lookup(name string) (placeholder, bool) {
	for p, n := range phNames {
		if n == name && placeholder(p) != literal {
			return placeholder(p), true
		}
	}
	return literal, false
}

// ErrNoReprintMark is Render refusing a reprint with a template that
// cannot show it.
var ErrNoReprintMark = errors.New("label: a reprint needs {reprint} in the template")

// Template is a parsed label template, safe for concurrent use.
type Template struct {
	parts []part
	uses  map[placeholder]bool
	names []string
}

type part struct {
	lit string
	ph  placeholder
	pos int   // offset of the placeholder in the template
	f   field // the field the placeholder is in
}

// ValueError is a value Render cannot write into its field: a ^, a ~ or a
// control byte in a field without ^FH (ZPL would read the first two as a
// command and drop the others).
type ValueError struct {
	// Placeholder is the placeholder's name, "serial".
	Placeholder string
	// Pos is the offset of Byte in the value.
	Pos  int
	Byte byte
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("label: {%s}: byte 0x%02X at %d cannot be written in a field without ^FH", e.Placeholder, e.Byte, e.Pos)
}

// token is one placeholder in the template text.
type token struct {
	start, end int
	ph         placeholder
	f          *field
}

// Parse parses a ZPL label template; see the package comment for what it
// accepts. Errors are *SyntaxError with the offset in zpl.
func Parse(zpl string) (*Template, error) {
	toks, err := lex(zpl)
	if err != nil {
		return nil, err
	}
	next := 0 // the first token not yet placed in a field
	err = scan(zpl, func(f field) error {
		end := f.start + len(f.data)
		for next < len(toks) && toks[next].start < f.start {
			next++ // outside any field data: reported below
		}
		lit := f.start
		for ; next < len(toks) && toks[next].end <= end; next++ {
			tk := &toks[next]
			if err := place(tk, f, zpl); err != nil {
				return err
			}
			if err := checkLiteral(f, zpl[lit:tk.start], lit); err != nil {
				return err
			}
			lit = tk.end
		}
		return checkLiteral(f, zpl[lit:end], lit)
	})
	if err != nil {
		return nil, err
	}
	t := &Template{uses: map[placeholder]bool{}}
	lit := 0
	for _, tk := range toks {
		if tk.f == nil {
			return nil, syntaxErr(tk.start, "{%s} outside field data (^FD…^FS)", tk.ph)
		}
		t.parts = append(t.parts, part{lit: unbrace(zpl[lit:tk.start])}, part{ph: tk.ph, pos: tk.start, f: *tk.f})
		if !t.uses[tk.ph] {
			t.uses[tk.ph] = true
			t.names = append(t.names, tk.ph.String())
		}
		lit = tk.end
	}
	t.parts = append(t.parts, part{lit: unbrace(zpl[lit:])})
	return t, nil
}

// lex finds the placeholders; {{ and }} are literal braces.
func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				i++
				continue
			}
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, syntaxErr(i, "{ without } (write {{ for a brace)")
			}
			name := s[i+1 : i+j]
			ph, ok := lookup(name)
			if !ok {
				return nil, syntaxErr(i, "unknown placeholder %s", quote("{"+name+"}", 24))
			}
			toks = append(toks, token{start: i, end: i + j + 1, ph: ph})
			i += j
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				i++
				continue
			}
			return nil, syntaxErr(i, "} without { (write }} for a brace)")
		}
	}
	return toks, nil
}

var unbrace = strings.NewReplacer("{{", "{", "}}", "}").Replace

// place checks that a placeholder may stand in field f.
func place(tk *token, f field, zpl string) error {
	switch {
	case f.barcode != "" && f.barcode != "BX":
		return syntaxErr(tk.start, "{%s} in a ^%s field: only text and ^BX fields take placeholders", tk.ph, f.barcode)
	case f.barcode == "BX" && !f.dm200:
		return syntaxErr(tk.start, "{%s} in a ^BX field of a quality other than 200", tk.ph)
	case tk.ph == phGS1Data && f.barcode != "BX":
		return syntaxErr(tk.start, "{gs1_data} belongs in a ^BX field of quality 200")
	case tk.ph == phGS1Data && zpl[f.start:f.start+len(f.data)] != "{gs1_data}":
		return syntaxErr(tk.start, "{gs1_data} must be the whole field data")
	}
	tk.f = &f
	return nil
}

// checkLiteral holds the template's own text in a field to what ParseJob
// will accept, so an escape cut short by a placeholder is caught here.
func checkLiteral(f field, s string, pos int) error {
	_, _, err := decode(f, unbrace(s), pos)
	return err
}

// Placeholders returns the names of the placeholders t uses, in the order
// they first appear.
func (t *Template) Placeholders() []string { return append([]string(nil), t.names...) }

// Render fills t with v. Each value is escaped for the field it stands
// in: in a ^FH field every ^, ~, control byte, non-ASCII byte and the
// indicator itself is written as a hex escape; in a field without ^FH a
// value holding ^, ~ or a control byte is refused with a *ValueError
// (non-ASCII bytes pass as they are, for ^CI28 UTF-8). In a ^FB field a
// backslash is doubled, in a quality 200 ^BX field the escape character
// is doubled and other control bytes are written as dNNN.
//
// When t uses {gs1} or {gs1_data}, the element string is built from v
// and must pass gs1.Parse (check digits, dates, character set, pairing:
// (21), (10) and (17) need a GTIN): a GS1 DataMatrix that the station
// would reject at every scan is not printed.
//
// A reprint (v.Reprint) of a template without {reprint} is refused: a
// reprint must be told from the first label.
func (t *Template) Render(v Values) ([]byte, error) {
	if v.Reprint && !t.uses[phReprint] {
		return nil, ErrNoReprintMark
	}
	var els []element
	if t.uses[phGS1] || t.uses[phGS1Data] {
		var err error
		if els, err = elements(v); err != nil {
			return nil, err
		}
	}
	reprint := ""
	if v.Reprint {
		reprint = ReprintMark
	}
	e := encoder{b: make([]byte, 0, 1024)}
	for _, p := range t.parts {
		if p.ph == literal {
			e.b = append(e.b, p.lit...)
			continue
		}
		e.f = p.f
		var err error
		switch p.ph {
		case phSerial:
			err = e.data(v.Serial)
		case phGTIN:
			err = e.data(gtin14(v.GTIN))
		case phProduct:
			err = e.data(v.Product)
		case phLot:
			err = e.data(v.Lot)
		case phExpiry:
			err = e.data(v.Expiry)
		case phReprint:
			err = e.data(reprint)
		case phGS1:
			err = e.data(bracketed(els))
		case phGS1Data:
			// FNC1 first marks the symbol as GS1 (]d2), then one after
			// every variable-length element but the last (GS1 General
			// Specifications 7.8.5).
			e.fnc1()
			for i, el := range els {
				if err = e.data(el.ai + el.value); err != nil {
					break
				}
				if !el.fixed && i < len(els)-1 {
					e.fnc1()
				}
			}
		}
		if err != nil {
			var ve *ValueError
			if errors.As(err, &ve) {
				ve.Placeholder = p.ph.String()
			}
			return nil, err
		}
	}
	return e.b, nil
}
