package serials

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/wire"
)

// DefaultMaxLen is the longest serial GS1 AI (21) carries.
const DefaultMaxLen = 20

// maxSeqWidth keeps 10^N - 1 inside an int64, which every central system
// can store.
const maxSeqWidth = 18

// maxLotLen is the longest batch or lot number GS1 AI (10) carries.
const maxLotLen = 20

// Error is a template the parser refuses, with the byte offset in the
// template where the problem is.
type Error struct {
	Offset int
	Msg    string
}

// Error returns "template: offset N: message".
func (e *Error) Error() string {
	return "template: offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

func errorf(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// errTooLong is wrapped by Render's error for a serial over the length
// limit: ids and lots vary in length, so only Render can tell.
var errTooLong = errors.New("too long")

// ParseOptions are the limits a template is parsed against. The zero
// value is AI (21)'s: CSET 82, 20 characters.
type ParseOptions struct {
	// MaxLen is the longest serial the template may make; 0 means
	// DefaultMaxLen. Only a serial that never goes into AI (21) may be
	// longer.
	MaxLen int
	// ASCII allows every visible ASCII character (0x21 to 0x7E, so also
	// '#', '$', '@', braces) instead of only GS1 CSET 82, for serials
	// that are not carried in a GS1 element string.
	ASCII bool
}

// Values are what a template is rendered with.
type Values struct {
	Site, Gateway, Station string
	// GTIN is 14 digits with their check digit; Lot is a batch or lot
	// number (AI 10); Expiry is YYMMDD as AI (17) carries it.
	GTIN, Lot, Expiry string
	// Time is the time of issue, in the time zone the date parts are
	// meant in (the caller passes local time).
	Time time.Time
	Seq  uint64
}

type kind uint8

const (
	kText kind = iota
	kSite
	kGateway
	kStation
	kYY
	kYYYY
	kMM
	kDD
	kDDD
	kGTIN
	kLot
	kExpiry
	kSeq
)

// placeholders maps the names without an argument to their kind and
// fixed width (0: the length varies).
var placeholders = map[string]struct {
	kind  kind
	width int
}{
	"site": {kSite, 0}, "gateway": {kGateway, 0}, "station": {kStation, 0},
	"yy": {kYY, 2}, "yyyy": {kYYYY, 4}, "mm": {kMM, 2}, "dd": {kDD, 2}, "ddd": {kDDD, 3},
	"gtin": {kGTIN, 14}, "lot": {kLot, 0}, "expiry": {kExpiry, 6},
}

type part struct {
	kind  kind
	text  string // kText: the literal; otherwise the placeholder as written
	width int    // 0 for the variable-length ids and lot
}

func (p part) String() string {
	if p.kind == kText {
		return strconv.Quote(p.text)
	}
	return p.text
}

// Template is a parsed serial template. It is immutable and safe for
// concurrent use.
type Template struct {
	src     string
	parts   []part // everything before the check character
	seq     int    // index of {seq:N} in parts
	maxSeq  uint64
	charset *[256]bool
	maxLen  int

	check      checkdigit.Algorithm // nil: no check character
	checkSrc   string
	checkWidth int
	covers     [256]bool // the characters the check algorithm takes
}

var cset82, visibleASCII [256]bool

func init() {
	for _, c := range []byte("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz") {
		cset82[c] = true
	}
	for c := 0x21; c <= 0x7E; c++ {
		visibleASCII[c] = true
	}
}

// checkChars are the characters each check algorithm may put out, so
// that Parse can refuse one whose check character a serial may not hold
// (mod43 makes ' ' and '$') instead of Render failing on some numbers
// only. A test holds it to checkdigit.Names.
var checkChars = map[string]string{
	"gs1":      "0123456789",
	"luhn":     "0123456789",
	"mod11-2":  "0123456789X",
	"mod37-2":  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*",
	"mod43":    checkdigit.Mod43Alphabet,
	"gs1-pair": "23456789ABCDEFGHJKLMNPQRSTUVWXYZ",
}

// Parse parses a template with the zero ParseOptions (AI 21's limits).
func Parse(template string) (*Template, error) { return ParseOptions{}.Parse(template) }

// Parse parses a template. Every error is an *Error. A template is
// refused when even its shortest serial (each id and lot one character)
// is over MaxLen; a longer id or lot is refused by Render.
func (o ParseOptions) Parse(template string) (*Template, error) {
	t := &Template{src: template, seq: -1, charset: &cset82, maxLen: o.MaxLen}
	charsetName := "GS1 CSET 82"
	if o.ASCII {
		t.charset, charsetName = &visibleASCII, "visible ASCII"
	}
	if t.maxLen <= 0 {
		t.maxLen = DefaultMaxLen
	}
	minLen := 0
	grow := func(off, n int, what string) error {
		if minLen += n; minLen > t.maxLen {
			return errorf(off, "%s makes the serial at least %d characters, over the limit of %d", what, minLen, t.maxLen)
		}
		return nil
	}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, part{kind: kText, text: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(template); {
		if t.check != nil {
			return nil, errorf(i-len(t.checkSrc), "%s must be the last thing in the template", t.checkSrc)
		}
		c := template[i]
		n := 1
		if (c == '{' || c == '}') && i+1 < len(template) && template[i+1] == c {
			n = 2 // {{ or }}
		} else if c == '}' {
			return nil, errorf(i, "} without {; write }} for a literal brace")
		}
		if n == 2 || c != '{' {
			if !t.charset[c] {
				return nil, errorf(i, "character %q is not allowed in a serial (%s)", string([]byte{c}), charsetName)
			}
			if err := grow(i, 1, strconv.Quote(string([]byte{c}))); err != nil {
				return nil, err
			}
			lit = append(lit, c)
			i += n
			continue
		}
		end := strings.IndexByte(template[i:], '}')
		if end < 0 {
			return nil, errorf(i, "unclosed {")
		}
		src := template[i : i+end+1]
		name, arg, hasArg := strings.Cut(src[1:len(src)-1], ":")
		switch {
		case name == "seq":
			if t.seq >= 0 {
				return nil, errorf(i, "second counter %s; a template has exactly one {seq:N}", src)
			}
			w, err := strconv.Atoi(arg)
			if !hasArg || !allDigits(arg) || err != nil || w < 1 || w > maxSeqWidth {
				return nil, errorf(i, "%s: the counter's width N must be 1 to %d, as in {seq:6}", src, maxSeqWidth)
			}
			if err := grow(i, w, src); err != nil {
				return nil, err
			}
			flush()
			t.seq = len(t.parts)
			t.maxSeq = pow10(w) - 1
			t.parts = append(t.parts, part{kind: kSeq, text: src, width: w})
		case name == "check":
			alg, ok := checkdigit.ByName(arg)
			if !ok {
				return nil, errorf(i, "%s: unknown check algorithm %q (one of %s)", src, arg, strings.Join(checkdigit.Names(), ", "))
			}
			out, known := checkChars[arg]
			if !known {
				return nil, errorf(i, "%s: %s is not supported in serials", src, arg)
			}
			for j := 0; j < len(out); j++ {
				if !t.charset[out[j]] {
					return nil, errorf(i, "%s: its check character may be %q, which a serial may not hold (%s)", src, string(out[j]), charsetName)
				}
			}
			cc, err := alg.Compute("0")
			if err != nil {
				return nil, errorf(i, "%s: %v", src, err) // every algorithm takes digits
			}
			if err := grow(i, len(cc), src); err != nil {
				return nil, err
			}
			flush()
			t.check, t.checkSrc, t.checkWidth = alg, src, len(cc)
			for b := range 256 {
				_, err := alg.Compute(string([]byte{byte(b)}))
				t.covers[b] = err == nil
			}
		default:
			ph, ok := placeholders[name]
			if !ok {
				return nil, errorf(i, "unknown placeholder %s", src)
			}
			if hasArg {
				return nil, errorf(i, "%s: {%s} takes no argument", src, name)
			}
			if err := grow(i, max(ph.width, 1), src); err != nil {
				return nil, err
			}
			flush()
			t.parts = append(t.parts, part{kind: ph.kind, text: src, width: ph.width})
		}
		i += len(src)
	}
	flush()
	if t.seq < 0 {
		return nil, errorf(len(template), "no counter; a template needs exactly one {seq:N}")
	}
	return t, nil
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// String returns the template as it was parsed.
func (t *Template) String() string { return t.src }

// MaxSeq returns the largest counter value the {seq:N} width holds,
// 10^N - 1: the maxSeq of the Counter methods.
func (t *Template) MaxSeq() uint64 { return t.maxSeq }

// Needs reports which product values Render needs, so that the caller
// knows what a trigger read (or the station's context) must carry.
func (t *Template) Needs() (gtin, lot, expiry bool) {
	for _, p := range t.parts {
		gtin = gtin || p.kind == kGTIN
		lot = lot || p.kind == kLot
		expiry = expiry || p.kind == kExpiry
	}
	return gtin, lot, expiry
}

// Render makes the serial for v. It fails when a value the template needs
// is missing or malformed, when v.Seq does not fit the counter's width,
// or when the serial is longer than the limit.
func (t *Template) Render(v Values) (string, error) {
	b := make([]byte, 0, t.maxLen)
	for _, p := range t.parts {
		switch p.kind {
		case kText:
			b = append(b, p.text...)
		case kSite, kGateway, kStation:
			id := v.id(p.kind)
			if !wire.ValidID(id) {
				return "", fmt.Errorf("serial: %s: %s", p.text, missingOr(id, "is not an id: 1 to 64 of [A-Za-z0-9._-]"))
			}
			b = append(b, id...)
		case kYY, kYYYY, kMM, kDD, kDDD:
			if v.Time.IsZero() {
				return "", fmt.Errorf("serial: %s: no time of issue", p.text)
			}
			if y := v.Time.Year(); y < 0 || y > 9999 {
				return "", fmt.Errorf("serial: %s: year %d is out of range", p.text, y)
			}
			b = appendPadded(b, uint64(datePart(p.kind, v.Time)), p.width)
		case kGTIN:
			if !validGTIN(v.GTIN) {
				return "", fmt.Errorf("serial: %s: %s", p.text, missingOr(v.GTIN, "is not a GTIN: 14 digits with their check digit"))
			}
			b = append(b, v.GTIN...)
		case kLot:
			if !t.validLot(v.Lot) {
				return "", fmt.Errorf("serial: %s: %s", p.text, missingOr(v.Lot, fmt.Sprintf("is not a lot: 1 to %d characters a serial may hold", maxLotLen)))
			}
			b = append(b, v.Lot...)
		case kExpiry:
			if !validExpiry(v.Expiry) {
				return "", fmt.Errorf("serial: %s: %s", p.text, missingOr(v.Expiry, "is not a date YYMMDD"))
			}
			b = append(b, v.Expiry...)
		case kSeq:
			if v.Seq > t.maxSeq {
				return "", fmt.Errorf("serial: %s: counter %d does not fit %d digits", p.text, v.Seq, p.width)
			}
			b = appendPadded(b, v.Seq, p.width)
		}
	}
	if n := len(b) + t.checkWidth; n > t.maxLen {
		return "", fmt.Errorf("serial: %w: %d characters, over the limit of %d", errTooLong, n, t.maxLen)
	}
	if t.check != nil {
		cc, err := t.check.Compute(t.covered(string(b)))
		if err != nil {
			return "", fmt.Errorf("serial: %s: %w", t.checkSrc, err)
		}
		b = append(b, cc...)
	}
	return string(b), nil
}

func missingOr(v, msg string) string {
	if v == "" {
		return "missing"
	}
	return strconv.Quote(v) + " " + msg
}

func (v Values) id(k kind) string {
	switch k {
	case kSite:
		return v.Site
	case kGateway:
		return v.Gateway
	}
	return v.Station
}

func datePart(k kind, tm time.Time) int {
	switch k {
	case kYY:
		return tm.Year() % 100
	case kYYYY:
		return tm.Year()
	case kMM:
		return int(tm.Month())
	case kDD:
		return tm.Day()
	}
	return tm.YearDay()
}

func appendPadded(b []byte, n uint64, width int) []byte {
	var d [20]byte
	s := strconv.AppendUint(d[:0], n, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// covered is the part of s the check character is computed over.
func (t *Template) covered(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if t.covers[s[i]] {
			out = append(out, s[i])
		}
	}
	return string(out)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validGTIN(s string) bool { return len(s) == 14 && checkdigit.VerifyGS1Mod10(s) }

func (t *Template) validLot(s string) bool {
	if len(s) < 1 || len(s) > maxLotLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !t.charset[s[i]] {
			return false
		}
	}
	return true
}

// validExpiry reports whether s is a GS1 date YYMMDD (GenSpecs 7.12): DD
// 00 stands for the month's last day. Every YY divisible by 4 counts as
// a leap year, which is right from 1901 to 2099.
func validExpiry(s string) bool {
	if len(s) != 6 || !allDigits(s) {
		return false
	}
	y, m, d := atoi2(s[0:2]), atoi2(s[2:4]), atoi2(s[4:6])
	if m < 1 || m > 12 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && y%4 == 0 {
		days = 29
	}
	return d <= days
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

// inRange reports whether the width digits of s lie in lo..hi.
func inRange(s string, lo, hi int) bool {
	n, err := strconv.Atoi(s)
	return allDigits(s) && err == nil && n >= lo && n <= hi
}
