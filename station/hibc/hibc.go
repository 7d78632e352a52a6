// Package hibc parses HIBC LIC data, the Health Industry Bar Code labeler
// format of ANSI/HIBC 2.6 (the Supplier Labeling Standard), one of the
// FDA's accredited UDI formats beside GS1.
//
// # Concepts
//
// Every HIBC LIC symbol starts with the flag character '+' and ends with a
// mod 43 check character computed over everything before it (the Code 39
// check character, ANSI/HIBC 2.6), so it works the same in Code 39,
// Code 128, DataMatrix or QR Code.
//
// The primary data identifies the product: "+", the Labeler Identification
// Code (LIC: four characters, the first a letter, assigned by HIBCC), the
// labeler's product or catalog number (PCN: 1 to 18 alphanumerics), and a
// one-digit unit of measure (0 for the unit of use, 1-8 for packaging
// levels). Its check character doubles as the "link character" that ties a
// separately printed secondary symbol to it.
//
// The secondary data carries the production identifiers: quantity, expiry
// date, lot or serial number. Its first characters say what follows:
//
//	+$LOT…              lot number only
//	+$+SERIAL…          serial number only
//	+$$MMYYLOT…         expiry MMYY (the month's first digit, 0 or 1, is the flag)
//	+$$2MMDDYYLOT…      expiry MMDDYY
//	+$$3YYMMDDLOT…      expiry YYMMDD
//	+$$4YYMMDDHHLOT…    expiry YYMMDD and hour
//	+$$5YYJJJLOT…       expiry as year and Julian day
//	+$$6YYJJJHHLOT…     expiry as year, Julian day and hour
//	+$$7LOT…            no expiry
//	+$$8QQ…             a two-digit quantity, then one of the date forms above
//	+$$9QQQQQ…          a five-digit quantity, then one of the date forms above
//	+$$+…               as "$$", with a serial number instead of a lot
//	+YYJJJLOT…          the original format: Julian date and lot
//
// A standalone secondary ends in the link character and its own check
// character. Supplemental fields may follow, each after a "/": "/S" serial
// number, "/14D" expiry YYYYMMDD, "/16D" manufacturing date YYYYMMDD.
//
// Primary and secondary may share one symbol, joined by "/": the primary
// loses its check character, the secondary its '+' and link character,
// and one check character at the end covers the whole string:
// "+A99912345/$$52001510X3/16D20111212/S77DE1G45-".
//
// Two-digit years are taken as 20YY: HIBC dates are expiry and production
// dates of products in circulation. An expiry given only as a month means
// the month's last day (the same reading GS1 gives DD = 00).
//
// HIBC PAS (provider applications, "+/…") is not handled.
package hibc

import (
	"strconv"
	"strings"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
)

// Error codes; part of the wire contract like gs1's.
const (
	CodeEmpty         = "empty"
	CodeNotHIBC       = "not_hibc"
	CodeTooShort      = "too_short"
	CodeBadCharset    = "bad_charset"
	CodeBadCheckChar  = "bad_check_char"
	CodeBadLIC        = "bad_lic"
	CodeBadPCN        = "bad_pcn"
	CodeBadUoM        = "bad_uom"
	CodeBadFlag       = "bad_flag"
	CodeBadDate       = "bad_date"
	CodeBadQuantity   = "bad_quantity"
	CodeBadLot        = "bad_lot"
	CodeBadSerial     = "bad_serial"
	CodeBadSupplement = "bad_supplemental"
)

// Error is one problem in HIBC data; Pos is the byte offset in the input.
type Error struct {
	Code string
	Pos  int
	Msg  string
}

func (e *Error) Error() string {
	return "hibc: " + e.Msg + " at " + strconv.Itoa(e.Pos) + " [" + e.Code + "]"
}

// Errors is every problem found in one input.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 0 {
		return "hibc: no error"
	}
	if len(es) == 1 {
		return es[0].Error()
	}
	return es[0].Error() + " (and " + strconv.Itoa(len(es)-1) + " more)"
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Primary is the product identification.
type Primary struct {
	LIC string // Labeler Identification Code
	PCN string // product or catalog number
	UoM int    // unit of measure, 0-9
}

// Secondary is the production data.
type Secondary struct {
	HasQuantity bool
	Quantity    int
	// Expiry is the expiry date (UTC midnight; the hour is set for the
	// formats that carry one), zero if none. ExpiryFormat names the form
	// it was written in: "MMYY", "MMDDYY", "YYMMDD", "YYMMDDHH", "YYJJJ",
	// "YYJJJHH" or "YYYYMMDD" (supplemental /14D).
	Expiry       time.Time
	ExpiryFormat string
	Lot          string
	Serial       string
	// Manufactured is the date of manufacture from a /16D field, zero if
	// none.
	Manufactured time.Time
	// Supplemental holds other "/" fields verbatim.
	Supplemental []string
}

// Result is parsed HIBC LIC data.
type Result struct {
	Symbology string // AIM symbology identifier, or ""
	Primary   *Primary
	Secondary *Secondary
	// Concatenated is true when primary and secondary share the symbol.
	Concatenated bool
	// Link is a standalone secondary's link character: the check
	// character of the primary it belongs to. 0 otherwise.
	Link byte
	// Check is the symbol's check character as read.
	Check byte
}

// LinksTo reports whether this standalone secondary belongs to the given
// primary (its link character is the primary's check character).
func (r *Result) LinksTo(primary *Result) bool {
	return r.Link != 0 && primary != nil && primary.Primary != nil && !primary.Concatenated && r.Link == primary.Check
}

type state struct {
	errs Errors
}

func (s *state) fail(code string, pos int, msg string) {
	s.errs = append(s.errs, &Error{Code: code, Pos: pos, Msg: msg})
}

// Looks reports whether data (after an optional AIM symbology identifier)
// has the shape of HIBC LIC data: a '+' followed by a letter (primary), a
// '$' or a digit (secondary). It does not validate.
func Looks(data string) bool {
	_, body, _ := trim(data)
	return len(body) >= 2 && body[0] == '+' && (isUpper(body[1]) || body[1] == '$' || isDigit(body[1]))
}

// trim removes an AIM identifier and the asterisks that frame Code 39
// human-readable text ("*+A123…*"). off is where body starts in data.
func trim(data string) (sym, body string, off int) {
	if len(data) >= 3 && data[0] == ']' && isAlpha(data[1]) && (isAlpha(data[2]) || isDigit(data[2])) {
		sym, data, off = data[:3], data[3:], 3
	}
	if len(data) >= 2 && data[0] == '*' && data[len(data)-1] == '*' {
		data, off = data[1:len(data)-1], off+1
	}
	return sym, data, off
}

// Parse parses one HIBC LIC scan: a primary, a standalone secondary, or
// both concatenated. The Result is never nil; the error is nil or Errors.
func Parse(data string) (*Result, error) {
	r := &Result{}
	s := &state{}
	sym, body, off := trim(data)
	r.Symbology = sym
	switch {
	case body == "":
		s.fail(CodeEmpty, off, "no data")
	case body[0] != '+':
		s.fail(CodeNotHIBC, off, "HIBC data starts with '+'")
	case len(body) >= 2 && body[1] == '/':
		s.fail(CodeNotHIBC, off+1, "HIBC PAS (provider) data is not supported")
	case len(body) < 3:
		s.fail(CodeTooShort, off, "too short for HIBC data")
	default:
		parse(body, off, r, s)
	}
	if len(s.errs) == 0 {
		return r, nil
	}
	return r, s.errs
}

func parse(body string, off int, r *Result, s *state) {
	for i := 0; i < len(body); i++ {
		if checkdigit.Mod43Value(body[i]) < 0 {
			s.fail(CodeBadCharset, off+i, "character "+strconv.QuoteRune(rune(body[i]))+" is not in the Code 39 set HIBC uses")
			return
		}
	}
	n := len(body) - 1
	r.Check = body[n]
	if want, _ := checkdigit.Mod43(body[:n]); want != r.Check {
		s.fail(CodeBadCheckChar, off+n, "check character "+string(r.Check)+" is wrong, expected "+string(want))
	}
	data := body[1:n] // without '+' and check character
	pos := off + 1
	switch c := data[0]; {
	case isUpper(c):
		slash := strings.IndexByte(data, '/')
		prim := data
		if slash >= 0 {
			prim = data[:slash]
		}
		r.Primary = primary(prim, pos, s)
		if slash >= 0 {
			r.Concatenated = true
			r.Secondary = secondary(data[slash+1:], pos+slash+1, s)
		}
	case c == '$' || isDigit(c):
		if len(data) < 2 {
			s.fail(CodeTooShort, pos, "a secondary needs its data and a link character")
			return
		}
		// The link character comes just before the check character; the
		// supplemental fields, if any, come before it too.
		r.Link = data[len(data)-1]
		r.Secondary = secondary(data[:len(data)-1], pos, s)
	default:
		s.fail(CodeBadLIC, pos, "a primary starts with a letter, a secondary with '$' or a digit")
	}
}

// primary reads LIC, PCN and unit of measure (ANSI/HIBC 2.6 primary data).
func primary(p string, pos int, s *state) *Primary {
	if len(p) < 6 {
		s.fail(CodeTooShort, pos, "a primary has a 4-character LIC, a product number and a unit of measure")
		return nil
	}
	out := &Primary{LIC: p[:4], PCN: p[4 : len(p)-1]}
	for i := 1; i < 4; i++ {
		if !isAlnum(p[i]) {
			s.fail(CodeBadLIC, pos+i, "the LIC is alphanumeric")
			return out
		}
	}
	if len(out.PCN) > 18 {
		s.fail(CodeBadPCN, pos+4+18, "the product number has at most 18 characters")
	}
	for i := 0; i < len(out.PCN); i++ {
		if !isAlnum(out.PCN[i]) {
			s.fail(CodeBadPCN, pos+4+i, "the product number is alphanumeric")
			break
		}
	}
	u := p[len(p)-1]
	if !isDigit(u) {
		s.fail(CodeBadUoM, pos+len(p)-1, "the unit of measure is one digit")
	} else {
		out.UoM = int(u - '0')
	}
	return out
}

// secondary reads the secondary data and its supplemental fields. A
// standalone secondary's link character has already been cut off: it sits
// right before the check character, after any supplemental fields.
func secondary(d string, pos int, s *state) *Secondary {
	out := &Secondary{}
	main, supp, hasSupp := strings.Cut(d, "/")
	rest, restPos := main, pos
	serial := false
	switch {
	case strings.HasPrefix(main, "$$+"):
		serial = true
		rest, restPos = main[3:], pos+3
		rest, restPos = flags(rest, restPos, out, s)
	case strings.HasPrefix(main, "$$"):
		rest, restPos = main[2:], pos+2
		rest, restPos = flags(rest, restPos, out, s)
	case strings.HasPrefix(main, "$+"):
		serial = true
		rest, restPos = main[2:], pos+2
	case strings.HasPrefix(main, "$"):
		rest, restPos = main[1:], pos+1
	default:
		// The original format: a five-digit Julian date, then the lot.
		rest, restPos = date(main, pos, "YYJJJ", out, s)
	}
	if rest == "\x00" {
		return out // a date or flag error already reported; the rest is unreliable
	}
	if serial {
		out.Serial = rest
	} else {
		out.Lot = rest
	}
	if len(rest) > 18 {
		s.fail(codeFor(serial), restPos+18, "lot and serial numbers have at most 18 characters")
	}
	for i := 0; i < len(rest); i++ {
		if !isAlnum(rest[i]) {
			s.fail(codeFor(serial), restPos+i, "lot and serial numbers are alphanumeric")
			break
		}
	}
	if hasSupp {
		supplemental(supp, pos+len(main)+1, out, s)
	}
	return out
}

func codeFor(serial bool) string {
	if serial {
		return CodeBadSerial
	}
	return CodeBadLot
}

// flags reads what follows "$$": an optional quantity ("8" + 2 digits,
// "9" + 5 digits), then the date flag and date. It returns the rest (the
// lot or serial), or "\x00" after an error.
func flags(rest string, pos int, out *Secondary, s *state) (string, int) {
	if rest == "" {
		s.fail(CodeBadFlag, pos, "\"$$\" must be followed by a date or a format flag")
		return "\x00", pos
	}
	if c := rest[0]; c == '8' || c == '9' {
		n := 2
		if c == '9' {
			n = 5
		}
		if len(rest) < 1+n || !allDigits(rest[1:1+n]) {
			s.fail(CodeBadQuantity, pos+1, "quantity flag "+string(c)+" needs "+strconv.Itoa(n)+" digits")
			return "\x00", pos
		}
		out.HasQuantity = true
		out.Quantity, _ = strconv.Atoi(rest[1 : 1+n])
		rest, pos = rest[1+n:], pos+1+n
		if rest == "" {
			s.fail(CodeBadFlag, pos, "a date flag must follow the quantity")
			return "\x00", pos
		}
	}
	switch c := rest[0]; c {
	case '0', '1':
		return date(rest, pos, "MMYY", out, s)
	case '2':
		return date(rest[1:], pos+1, "MMDDYY", out, s)
	case '3':
		return date(rest[1:], pos+1, "YYMMDD", out, s)
	case '4':
		return date(rest[1:], pos+1, "YYMMDDHH", out, s)
	case '5':
		return date(rest[1:], pos+1, "YYJJJ", out, s)
	case '6':
		return date(rest[1:], pos+1, "YYJJJHH", out, s)
	case '7':
		return rest[1:], pos + 1
	}
	s.fail(CodeBadFlag, pos, "unknown date format flag "+strconv.QuoteRune(rune(rest[0])))
	return "\x00", pos
}

// date reads an expiry date in the given format from the front of v.
func date(v string, pos int, format string, out *Secondary, s *state) (string, int) {
	n := len(format)
	if len(v) < n || !allDigits(v[:n]) {
		s.fail(CodeBadDate, pos, "expiry date "+format+" needs "+strconv.Itoa(n)+" digits")
		return "\x00", pos
	}
	t, ok := decodeDate(v[:n], format)
	if !ok {
		s.fail(CodeBadDate, pos, "expiry date "+v[:n]+" is not a valid "+format)
		return "\x00", pos
	}
	out.Expiry, out.ExpiryFormat = t, format
	return v[n:], pos + n
}

func decodeDate(v, format string) (time.Time, bool) {
	num := func(i, n int) int { x, _ := strconv.Atoi(v[i : i+n]); return x }
	var y, m, d, h int
	switch format {
	case "MMYY":
		y, m = 2000+num(2, 2), num(0, 2)
		if m < 1 || m > 12 {
			return time.Time{}, false
		}
		d = daysIn(y, m)
	case "MMDDYY":
		y, m, d = 2000+num(4, 2), num(0, 2), num(2, 2)
	case "YYMMDD", "YYMMDDHH":
		y, m, d = 2000+num(0, 2), num(2, 2), num(4, 2)
		if format == "YYMMDDHH" {
			h = num(6, 2)
		}
	case "YYYYMMDD":
		y, m, d = num(0, 4), num(4, 2), num(6, 2)
	case "YYJJJ", "YYJJJHH":
		y = 2000 + num(0, 2)
		j := num(2, 3)
		days := 365
		if isLeap(y) {
			days = 366
		}
		if j < 1 || j > days {
			return time.Time{}, false
		}
		if format == "YYJJJHH" {
			h = num(5, 2)
		}
		if h > 23 {
			return time.Time{}, false
		}
		return time.Date(y, 1, j, h, 0, 0, 0, time.UTC), true
	}
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) || h > 23 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, h, 0, 0, 0, time.UTC), true
}

// supplemental reads "/"-separated fields with ANSI MH10.8.2 data
// identifiers (ANSI/HIBC 2.6).
func supplemental(supp string, pos int, out *Secondary, s *state) {
	for _, f := range strings.Split(supp, "/") {
		switch {
		case f == "":
			s.fail(CodeBadSupplement, pos, "empty supplemental field")
		case strings.HasPrefix(f, "16D") || strings.HasPrefix(f, "14D"):
			v := f[3:]
			t, ok := time.Time{}, len(v) == 8 && allDigits(v)
			if ok {
				t, ok = decodeDate(v, "YYYYMMDD")
			}
			if !ok {
				s.fail(CodeBadDate, pos+3, f[:3]+" needs a date YYYYMMDD")
				break
			}
			if f[:2] == "16" {
				out.Manufactured = t
			} else {
				out.Expiry, out.ExpiryFormat = t, "YYYYMMDD"
			}
		case f[0] == 'S':
			out.Serial = f[1:]
			if out.Serial == "" || len(out.Serial) > 18 {
				s.fail(CodeBadSerial, pos+1, "a serial number has 1 to 18 characters")
			}
			for i := 0; i < len(out.Serial); i++ {
				if !isAlnum(out.Serial[i]) {
					s.fail(CodeBadSerial, pos+1+i, "serial numbers are alphanumeric")
					break
				}
			}
		default:
			out.Supplemental = append(out.Supplemental, f)
		}
		pos += len(f) + 1
	}
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isAlpha(c byte) bool { return isUpper(c) || c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool { return isUpper(c) || isDigit(c) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
