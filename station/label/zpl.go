package label

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/scangw/scangw/station/gs1"
)

// SyntaxError is a template or a job that is not ZPL this package can
// vouch for, at a byte offset.
type SyntaxError struct {
	// Pos is the byte offset in the template or job.
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("label: offset %d: %s", e.Pos, e.Msg)
}

func syntaxErr(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// field is the context one ^FD (or ^FV) is read in: what the commands of
// its field, since the last ^FS, say about its data.
type field struct {
	pos   int // offset of the ^FD
	start int // offset of the data
	data  string
	// hex is the ^FH indicator, 0 without ^FH.
	hex byte
	// block is set by ^FB, whose data gives \& and \\ a meaning.
	block bool
	// barcode is the barcode command of the field ("BX", "BC"), "".
	barcode string
	// dm200 marks a ^BX of quality 200: its data has escape sequences
	// introduced by esc.
	dm200 bool
	esc   byte
	bxPos int
}

// scan walks the commands of a ZPL text and hands every field's data to
// visit. It holds a template and a job to the same rules, so a template
// Parse accepts renders to a job ParseJob accepts:
//
//   - only white space before the first command and between formats;
//     every format opens with ^XA and closes with ^XZ, and a ^ command
//     outside a format is refused (a printer ignores it, so it is a
//     mistake);
//   - field data (^FD, ^FV) runs to the next prefix, which must be the
//     ^FS closing the field: anything else, above all a ~, means a ^ or ~
//     got into the data and the printer would run it as a command;
//   - ^CC, ^CT, ^CD and their ~ forms are refused: they change the prefix
//     and delimiter characters every later byte is read by;
//   - a quality 200 ^BX names its escape character (parameter g): its
//     default is _ on some firmware and ~ on other (ZPL II Programming
//     Guide, ^BX), so a symbol without it encodes differently by printer.
func scan(src string, visit func(f field) error) error {
	i := 0
	for i < len(src) && isSpace(src[i]) {
		i++
	}
	if i < len(src) && src[i] != '^' && src[i] != '~' {
		return syntaxErr(i, "text %s before the first command", quote(src[i:], 8))
	}
	var (
		formats  int
		open     = -1 // offset of the ^XA of the open format
		cur      field
		pending  bool // a ^FD waits for its ^FS
		pendName string
	)
	for i < len(src) {
		if len(src)-i < 3 {
			return syntaxErr(i, "command cut short: %s", quote(src[i:], 3))
		}
		name := upper(src[i : i+3])
		argPos := i + 3
		end := len(src)
		if j := strings.IndexAny(src[argPos:], "^~"); j >= 0 {
			end = argPos + j
		}
		arg := src[argPos:end]
		pos := i
		i = end

		if !isAlpha(name[1]) || !(isAlpha(name[2]) || isDigit(name[2]) || name == "^A@") {
			return syntaxErr(pos, "%s is not a command: a ^ or ~ in a parameter or in field data starts a command", quote(src[pos:pos+3], 3))
		}
		if pending && name != "^FS" {
			return syntaxErr(pos, "%s data at %d must end with ^FS, not %s: a ^ or ~ in field data is a command to the printer", pendName, cur.pos, name)
		}
		switch name {
		case "^CC", "~CC", "^CT", "~CT", "^CD", "~CD":
			return syntaxErr(pos, "%s changes the ZPL prefix or delimiter: not supported", name)
		case "^XA":
			if open >= 0 {
				return syntaxErr(pos, "^XA inside the format opened at %d", open)
			}
			open, cur = pos, field{}
			formats++
			continue
		case "^XZ":
			if open < 0 {
				return syntaxErr(pos, "^XZ without ^XA")
			}
			open, cur = -1, field{}
			if strings.TrimLeft(arg, " \t\r\n") != "" {
				return syntaxErr(argPos, "text %s after ^XZ", quote(strings.TrimLeft(arg, " \t\r\n"), 8))
			}
			continue
		}
		if name[0] == '^' && open < 0 {
			return syntaxErr(pos, "%s outside ^XA…^XZ", name)
		}
		switch {
		case name == "^FH":
			cur.hex = '_'
			if a := strings.TrimLeft(arg, "\r\n"); a != "" {
				cur.hex = a[0]
			}
			if cur.hex == ',' || cur.hex <= ' ' || cur.hex >= 0x7f {
				return syntaxErr(argPos, "^FH indicator %q is not a printable character", cur.hex)
			}
		case name == "^FB":
			cur.block = true
		case name == "^BX":
			cur.barcode, cur.bxPos = "BX", pos
			params := strings.Split(strings.NewReplacer("\r", "", "\n", "").Replace(arg), ",")
			cur.dm200 = len(params) > 2 && strings.TrimSpace(params[2]) == "200"
			cur.esc = 0
			if len(params) > 6 && params[6] != "" {
				cur.esc = params[6][0]
				if cur.esc <= ' ' || cur.esc >= 0x7f {
					return syntaxErr(argPos, "^BX escape character %q is not printable", cur.esc)
				}
			}
		case name[0] == '^' && name[1] == 'B' && name != "^BY":
			// ^BY only sets bar code defaults; every other ^Bx makes the
			// field a barcode.
			cur.barcode = name[1:]
		case name == "^FD" || name == "^FV":
			if cur.dm200 && cur.esc == 0 {
				return syntaxErr(cur.bxPos, "^BX of quality 200 must name its escape character (7th parameter, e.g. ^BXN,5,200,,,,_): the default differs between firmware versions")
			}
			cur.pos, cur.start, cur.data = pos, argPos, arg
			pending, pendName = true, name
		case name == "^FS":
			if pending {
				pending = false
				if err := visit(cur); err != nil {
					return err
				}
			}
			cur = field{}
		}
	}
	switch {
	case pending:
		return syntaxErr(cur.pos, "%s data without ^FS", pendName)
	case open >= 0:
		return syntaxErr(open, "^XA without ^XZ")
	case formats == 0:
		return syntaxErr(0, "no ^XA…^XZ format")
	}
	return nil
}

// upper folds ASCII letters: ZPL command names are not case sensitive.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func isAlpha(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func quote(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

const hexDigits = "0123456789ABCDEF"

// The escape sequences of quality 200 Data Matrix field data (ZPL II
// Programming Guide, ^BX, "Field Data (^FD) for ^BX"), after the escape
// character g: 1 is FNC1, dNNN the byte NNN, and g itself doubled is g.
const (
	dmFNC1 = '1'
	dmByte = 'd'
)

// gs is what FNC1 between elements reads as: a scanner transmits a
// separating FNC1 as GS.
const gs = gs1.GS

// encoder writes one value into the data of a field, escaped for every
// layer the printer reads that field through, innermost first: the Data
// Matrix escapes, then ^FB's backslash, then ^FH's hex (the printer undoes
// them in the opposite order: "If ^FH is used, field hexadecimal
// processing takes place before the escape sequence processing").
type encoder struct {
	f field
	b []byte
}

// fnc1 writes FNC1 into a quality 200 ^BX field.
func (e *encoder) fnc1() { e.outer(e.f.esc); e.outer(dmFNC1) }

// data writes value's bytes as data; a byte the field cannot carry is a
// *ValueError.
func (e *encoder) data(value string) error {
	for i := 0; i < len(value); i++ {
		c := value[i]
		ok := true
		switch {
		case !e.f.dm200:
			ok = e.text(c)
		case c == e.f.esc:
			ok = e.text(c) && e.text(c)
		case c < 0x20 || c >= 0x7f:
			// dNNN rather than the shift form: with _ as the escape
			// character, the shift of 0x1F would read as __.
			ok = e.text(e.f.esc) && e.text(dmByte) &&
				e.text('0'+c/100) && e.text('0'+c/10%10) && e.text('0'+c%10)
		default:
			ok = e.text(c)
		}
		if !ok {
			return &ValueError{Pos: i, Byte: c}
		}
	}
	return nil
}

// text writes one data byte through the ^FB layer.
func (e *encoder) text(c byte) bool {
	if e.f.block && c == '\\' && !e.outer('\\') {
		return false
	}
	return e.outer(c)
}

// outer writes one byte as the printer must find it after ^FH: without
// ^FH, a prefix or a control byte cannot be written at all.
func (e *encoder) outer(c byte) bool {
	special := c == '^' || c == '~' || c < 0x20 || c == 0x7f
	switch {
	case e.f.hex != 0 && (special || c == e.f.hex || c >= 0x80):
		e.b = append(e.b, e.f.hex, hexDigits[c>>4], hexDigits[c&15])
	case special:
		return false
	default:
		e.b = append(e.b, c)
	}
	return true
}

// decode reads a field's data as the printer does: it drops CR and LF
// (ZPL ignores them), undoes ^FH, ^FB and the Data Matrix escapes, and
// reports a leading FNC1. base is the offset of data in the job, for
// errors.
func decode(f field, data string, base int) (out string, fnc1 bool, err error) {
	b := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\r' || c == '\n':
			continue
		case c < 0x20 || c == 0x7f:
			return "", false, syntaxErr(base+i, "control byte 0x%02X in field data", c)
		case f.hex != 0 && c == f.hex:
			if i+2 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) {
				return "", false, syntaxErr(base+i, "^FH indicator %q not followed by two hex digits", f.hex)
			}
			c = unhex(data[i+1])<<4 | unhex(data[i+2])
			i += 2
		}
		b = append(b, c)
	}
	if f.block {
		b = unblock(b)
	}
	if !f.dm200 {
		return string(b), false, nil
	}
	var d []byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != f.esc {
			d = append(d, c)
			continue
		}
		if i+1 >= len(b) {
			return "", false, syntaxErr(base, "Data Matrix escape %q at the end of the data", f.esc)
		}
		i++
		switch x := b[i]; {
		case x == f.esc:
			d = append(d, x)
		case x == dmFNC1:
			if i == 1 {
				fnc1 = true
			} else {
				d = append(d, gs)
			}
		case x == dmByte:
			n, ok := 0, i+3 < len(b)
			for k := 1; ok && k <= 3; k++ {
				ok = b[i+k] >= '0' && b[i+k] <= '9'
				n = n*10 + int(b[i+k]-'0')
			}
			if !ok || n > 255 {
				return "", false, syntaxErr(base, "Data Matrix escape %cd needs three digits up to 255", f.esc)
			}
			d = append(d, byte(n))
			i += 3
		case x >= '@' && x <= '_':
			d = append(d, x-'@') // the shift for control characters: _@ is NUL
		default:
			return "", false, syntaxErr(base, "Data Matrix escape %c%c not supported (only FNC1, dNNN, control shifts)", f.esc, x)
		}
	}
	return string(d), fnc1, nil
}

// unblock undoes ^FB's escapes: \& is a line break, \\ a backslash.
func unblock(b []byte) []byte {
	out := b[:0]
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			switch b[i+1] {
			case '\\':
				i++
			case '&':
				out = append(out, '\n')
				i++
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
