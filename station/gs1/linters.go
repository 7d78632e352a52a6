package gs1

import (
	"strings"

	"github.com/scangw/scangw/station/checkdigit"
)

// Linters are the content checks the Barcode Syntax Dictionary names after
// a component's type ("N14,csum,keyoff1"). Each gets one component's value
// (already checked for length and character set) and the reference year
// for two-digit years; it reports the first problem with its offset into
// the component. They follow the semantics of GS1's reference "Barcode
// Syntax Tests"; the error codes are ours.

// lintErr is a linter's finding; the zero value means the value is fine.
type lintErr struct {
	code string
	off  int
	msg  string
}

type linter struct {
	name string
	fn   func(v string, year int) lintErr
	// year marks linters that need the reference year (GenSpecs 7.12).
	year bool
}

// lookupLinter finds the linter of a dictionary name. One case per linter
// of the GS1 Barcode Syntax Dictionary: a table, kept whole.
func lookupLinter(name string) (linter, bool) {
	var fn func(string, int) lintErr
	year := false
	switch name {
	case "csum":
		fn = lintCsum
	case "csumalpha":
		fn = lintCsumAlpha
	case "key", "gcppos1":
		fn = lintKey
	case "keyoff1", "gcppos2":
		fn = lintKeyOff1
	case "yymmd0":
		fn, year = lintYYMMD0, true
	case "yymmdd":
		fn, year = lintYYMMDD, true
	case "yyyymmd0":
		fn = lintYYYYMMD0
	case "yyyymmdd":
		fn = lintYYYYMMDD
	case "hhmi", "hhmm":
		fn = lintHHMI
	case "hh":
		fn = lintHH
	case "mi":
		fn = lintMI
	case "ss":
		fn = lintSS
	case "iso3166":
		fn = lintISO3166
	case "iso3166999":
		fn = lintISO3166999
	case "iso3166alpha2":
		fn = lintISO3166Alpha2
	case "iso3166list":
		fn = lintISO3166List
	case "iso4217":
		fn = lintISO4217
	case "iso5218":
		fn = lintISO5218
	case "pcenc":
		fn = lintPcenc
	case "latitude":
		fn = lintLatitude
	case "longitude":
		fn = lintLongitude
	case "yesno":
		fn = lintYesNo
	case "hyphen":
		fn = lintHyphen
	case "nonzero":
		fn = lintNonZero
	case "zero":
		fn = lintZero
	case "winding":
		fn = lintWinding
	case "pieceoftotal":
		fn = lintPieceOfTotal
	case "posinseqslash":
		fn = lintPosInSeqSlash
	case "mediatype":
		fn = lintMediaType
	case "packagetype":
		fn = lintPackageType
	case "importeridx":
		fn = lintImporterIdx
	case "iban":
		fn = lintIBAN
	case "nozeroprefix":
		fn = lintNoZeroPrefix
	case "hasnondigit":
		fn = lintHasNonDigit
	case "couponcode":
		fn, year = lintCouponCode, true
	case "couponposoffer":
		fn = lintCouponPosOffer
	default:
		return linter{}, false
	}
	return linter{name: name, fn: fn, year: year}, true
}

func bad(code string, off int, msg string) lintErr { return lintErr{code: code, off: off, msg: msg} }

// lintCsum: the last digit is the GS1 mod 10 check digit of the others
// (GenSpecs 7.9.1).
func lintCsum(v string, _ int) lintErr {
	if checkdigit.VerifyGS1Mod10(v) {
		return lintErr{}
	}
	msg := "check digit is wrong"
	if c, err := checkdigit.GS1Mod10(v[:len(v)-1]); err == nil && len(v) > 1 {
		msg = "check digit " + string(v[len(v)-1]) + " is wrong, expected " + string(c)
	}
	return bad(CodeBadCheckDigit, len(v)-1, msg)
}

// lintCsumAlpha: the last two characters are the GS1 check character pair
// of the others (GenSpecs 7.9.5).
func lintCsumAlpha(v string, _ int) lintErr {
	if checkdigit.VerifyGS1CheckPair(v) {
		return lintErr{}
	}
	if len(v) < 2 {
		return bad(CodeBadCheckPair, 0, "too short for a check character pair")
	}
	msg := "check character pair is wrong"
	if p, err := checkdigit.GS1CheckPair(v[:len(v)-2]); err == nil {
		msg = "check character pair " + v[len(v)-2:] + " is wrong, expected " + p
	}
	return bad(CodeBadCheckPair, len(v)-2, msg)
}

// gcpMinLength is the length of the shortest GS1 Company Prefix: GS1
// allocates prefixes of 4 to 12 digits, and GS1's reference linter uses
// the same minimum.
const gcpMinLength = 4

// lintKey: the component starts with a GS1 Company Prefix. Without a GCP
// allocation database (GEPIR) this can only check that the prefix has the
// shape of one: at least four digits.
func lintKey(v string, _ int) lintErr {
	if len(v) < gcpMinLength {
		return bad(CodeBadGCP, 0, "too short to start with a GS1 Company Prefix")
	}
	for i := 0; i < gcpMinLength; i++ {
		if !isDigit(v[i]) {
			return bad(CodeBadGCP, i, "does not start with a GS1 Company Prefix (four or more digits)")
		}
	}
	return lintErr{}
}

// lintKeyOff1: like lintKey after the first character (the indicator or
// extension digit of GTIN, SSCC, ITIP).
func lintKeyOff1(v string, y int) lintErr {
	if len(v) < 2 {
		return bad(CodeBadGCP, 0, "too short to hold a GS1 Company Prefix")
	}
	e := lintKey(v[1:], y)
	if e.code != "" {
		e.off++
	}
	return e
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// resolveYear turns a two-digit year into a full one with the sliding
// window of GenSpecs 7.12: within 50 years back and 49 ahead of ref
// (the reference year, normally the current one).
func resolveYear(yy, ref int) int {
	cur := ref % 100
	base := ref - cur
	switch d := yy - cur; {
	case d >= 51:
		return base - 100 + yy
	case d <= -50:
		return base + 100 + yy
	}
	return base + yy
}

func digits2(s string, i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }

func checkDate(v string, year int, dayZero bool, off int) lintErr {
	m := digits2(v, off)
	if m < 1 || m > 12 {
		return bad(CodeBadDate, off, "month must be 01 to 12")
	}
	d := digits2(v, off+2)
	if d == 0 && dayZero {
		// DD = 00: no day given; the date stands for the last day of the
		// month (GenSpecs section 3.4, e.g. AI (17)).
		return lintErr{}
	}
	if d < 1 || d > daysIn(year, m) {
		return bad(CodeBadDate, off+2, "no such day in that month")
	}
	return lintErr{}
}

func sixDigits(v string, n int, code string) (lintErr, bool) {
	if len(v) != n {
		return bad(code, 0, "wrong length"), false
	}
	for i := 0; i < n; i++ {
		if !isDigit(v[i]) {
			return bad(code, i, "not a digit"), false
		}
	}
	return lintErr{}, true
}

// lintYYMMD0: a date YYMMDD where DD may be 00; the century follows
// GenSpecs 7.12.
func lintYYMMD0(v string, ref int) lintErr {
	if e, good := sixDigits(v, 6, CodeBadDate); !good {
		return e
	}
	return checkDate(v, resolveYear(digits2(v, 0), ref), true, 2)
}

// lintYYMMDD: a date YYMMDD with a real day.
func lintYYMMDD(v string, ref int) lintErr {
	if e, good := sixDigits(v, 6, CodeBadDate); !good {
		return e
	}
	return checkDate(v, resolveYear(digits2(v, 0), ref), false, 2)
}

func lintYYYYMMD0(v string, _ int) lintErr {
	if e, good := sixDigits(v, 8, CodeBadDate); !good {
		return e
	}
	return checkDate(v, digits2(v, 0)*100+digits2(v, 2), true, 4)
}

func lintYYYYMMDD(v string, _ int) lintErr {
	if e, good := sixDigits(v, 8, CodeBadDate); !good {
		return e
	}
	return checkDate(v, digits2(v, 0)*100+digits2(v, 2), false, 4)
}

func lintTwo(v string, max int, what string) lintErr {
	if e, good := sixDigits(v, 2, CodeBadTime); !good {
		return e
	}
	if digits2(v, 0) > max {
		return bad(CodeBadTime, 0, what)
	}
	return lintErr{}
}

func lintHH(v string, _ int) lintErr { return lintTwo(v, 23, "hour must be 00 to 23") }
func lintMI(v string, _ int) lintErr { return lintTwo(v, 59, "minute must be 00 to 59") }
func lintSS(v string, _ int) lintErr { return lintTwo(v, 59, "second must be 00 to 59") }

func lintHHMI(v string, _ int) lintErr {
	if e, good := sixDigits(v, 4, CodeBadTime); !good {
		return e
	}
	if digits2(v, 0) > 23 {
		return bad(CodeBadTime, 0, "hour must be 00 to 23")
	}
	if digits2(v, 2) > 59 {
		return bad(CodeBadTime, 2, "minute must be 00 to 59")
	}
	return lintErr{}
}

func lintISO3166(v string, _ int) lintErr {
	if !IsCountry(v) {
		return bad(CodeBadCountry, 0, "not an ISO 3166-1 numeric country code")
	}
	return lintErr{}
}

// lintISO3166999: a country code, or 999 for "country unknown" (the
// processor AIs 7030-7039).
func lintISO3166999(v string, y int) lintErr {
	if v == "999" {
		return lintErr{}
	}
	return lintISO3166(v, y)
}

func lintISO3166Alpha2(v string, _ int) lintErr {
	if !IsCountryAlpha2(v) {
		return bad(CodeBadCountry, 0, "not an ISO 3166-1 alpha-2 country code")
	}
	return lintErr{}
}

// lintISO3166List: one or more concatenated country codes (older
// dictionaries wrote AIs 423 and 425 this way).
func lintISO3166List(v string, y int) lintErr {
	if len(v)%3 != 0 {
		return bad(CodeBadValue, 0, "a list of three-digit country codes")
	}
	for i := 0; i < len(v); i += 3 {
		if e := lintISO3166(v[i:i+3], y); e.code != "" {
			e.off = i
			return e
		}
	}
	return lintErr{}
}

func lintISO4217(v string, _ int) lintErr {
	if !IsCurrency(v) {
		return bad(CodeBadCurrency, 0, "not an ISO 4217 numeric currency code")
	}
	return lintErr{}
}

// lintISO5218: biological sex per ISO/IEC 5218: 0 unknown, 1 male, 2
// female, 9 not applicable.
func lintISO5218(v string, _ int) lintErr {
	if v != "0" && v != "1" && v != "2" && v != "9" {
		return bad(CodeBadValue, 0, "not an ISO/IEC 5218 code (0, 1, 2 or 9)")
	}
	return lintErr{}
}

func isHex(c byte) bool {
	return isDigit(c) || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

// lintPcenc: percent-encoding is well formed: CSET 82 has no space or
// accented letters, so names and addresses carry them as %XX (GenSpecs
// 3.8.17).
func lintPcenc(v string, _ int) lintErr {
	for i := 0; i < len(v); i++ {
		if v[i] == '%' {
			if i+2 >= len(v) || !isHex(v[i+1]) || !isHex(v[i+2]) {
				return bad(CodeBadValue, i, "a '%' must be followed by two hexadecimal digits")
			}
			i += 2
		}
	}
	return lintErr{}
}

func tenDigitsAtMost(v string, max uint64, msg string) lintErr {
	if e, good := sixDigits(v, 10, CodeBadValue); !good {
		return e
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		n = n*10 + uint64(v[i]-'0')
	}
	if n > max {
		return bad(CodeBadValue, 0, msg)
	}
	return lintErr{}
}

// lintLatitude: latitude + 90 in units of 10⁻⁷ degree (GenSpecs, AI (4309)).
func lintLatitude(v string, _ int) lintErr {
	return tenDigitsAtMost(v, 1800000000, "latitude out of range")
}

// lintLongitude: longitude + 180 in units of 10⁻⁷ degree; like GS1's
// reference linter it accepts 360° itself.
func lintLongitude(v string, _ int) lintErr {
	return tenDigitsAtMost(v, 3600000000, "longitude out of range")
}

func oneOf(v, set, msg string) lintErr {
	if len(v) != 1 || strings.IndexByte(set, v[0]) < 0 {
		return bad(CodeBadValue, 0, msg)
	}
	return lintErr{}
}

func lintYesNo(v string, _ int) lintErr { return oneOf(v, "01", "must be 0 (no) or 1 (yes)") }
func lintWinding(v string, _ int) lintErr {
	return oneOf(v, "019", "winding direction must be 0, 1 or 9")
}

func lintHyphen(v string, _ int) lintErr {
	if strings.Trim(v, "-") != "" {
		return bad(CodeBadValue, 0, "must be a hyphen (negative temperature)")
	}
	return lintErr{}
}

func lintNonZero(v string, _ int) lintErr {
	if strings.Trim(v, "0") == "" {
		return bad(CodeBadValue, 0, "must not be zero")
	}
	return lintErr{}
}

func lintZero(v string, _ int) lintErr {
	if strings.Trim(v, "0") != "" {
		return bad(CodeBadValue, 0, "must be zero")
	}
	return lintErr{}
}

// lintPieceOfTotal: a piece number and a total of equal width, neither
// zero, piece ≤ total (ITIP, AI (8006)).
func lintPieceOfTotal(v string, _ int) lintErr {
	if len(v) == 0 || len(v)%2 != 0 {
		return bad(CodeBadValue, 0, "piece and total must have equal width")
	}
	if !allDigits(v) {
		return bad(CodeBadValue, 0, "not digits")
	}
	h := len(v) / 2
	piece, total := v[:h], v[h:]
	switch {
	case strings.Trim(piece, "0") == "":
		return bad(CodeBadValue, 0, "piece number must not be zero")
	case strings.Trim(total, "0") == "":
		return bad(CodeBadValue, h, "total number of pieces must not be zero")
	case piece > total: // equal width: string order is numeric order
		return bad(CodeBadValue, 0, "piece number exceeds the total")
	}
	return lintErr{}
}

// lintPosInSeqSlash: "pos/end" with neither zero nor zero-prefixed and
// pos ≤ end (birth sequence, AI 7258).
func lintPosInSeqSlash(v string, _ int) lintErr {
	pos, end, found := strings.Cut(v, "/")
	if !found || pos == "" || end == "" || !allDigits(pos) || !allDigits(end) {
		return bad(CodeBadValue, 0, "must be <position>/<count>")
	}
	if pos[0] == '0' {
		return bad(CodeBadValue, 0, "position must not be zero or start with 0")
	}
	if end[0] == '0' {
		return bad(CodeBadValue, len(pos)+1, "count must not be zero or start with 0")
	}
	if len(pos) > len(end) || len(pos) == len(end) && pos > end {
		return bad(CodeBadValue, 0, "position exceeds the count")
	}
	return lintErr{}
}

// lintMediaType: AIDC media type (GenSpecs, AI (7241)): 01-10 assigned, 80-99
// for local use.
func lintMediaType(v string, _ int) lintErr {
	if len(v) == 2 && allDigits(v) {
		if n := digits2(v, 0); n >= 1 && n <= 10 || n >= 80 {
			return lintErr{}
		}
	}
	return bad(CodeBadValue, 0, "not an AIDC media type (01-10, 80-99)")
}

func lintPackageType(v string, _ int) lintErr {
	if !codes.pkg[v] {
		return bad(CodeBadValue, 0, "not a PackageTypeCode (UN/ECE Rec. 21)")
	}
	return lintErr{}
}

// lintImporterIdx: one character of 0-9 A-Z a-z '-' '_' (EU 2018/574
// tobacco traceability, AI (7040)).
func lintImporterIdx(v string, _ int) lintErr {
	if len(v) != 1 || !isBase64URL(v[0]) {
		return bad(CodeBadValue, 0, "importer index must be one of 0-9 A-Z a-z - _")
	}
	return lintErr{}
}

// lintIBAN: ISO 13616 IBAN: country code, two check digits (mod 97 = 1
// over the rearranged number), then the account number.
func lintIBAN(v string, _ int) lintErr {
	if len(v) < 11 {
		return bad(CodeBadValue, 0, "too short for an IBAN")
	}
	if !IsCountryAlpha2(v[:2]) {
		return bad(CodeBadCountry, 0, "IBAN must start with an ISO 3166-1 alpha-2 country code")
	}
	sum := 0
	for k := 0; k < len(v); k++ {
		i := (k + 4) % len(v) // the first four characters move to the end
		c := v[i]
		switch {
		case isDigit(c):
			sum = (sum*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			sum = (sum*100 + int(c-'A') + 10) % 97
		default:
			return bad(CodeBadValue, i, "IBANs hold only digits and capital letters")
		}
	}
	if sum != 1 {
		return bad(CodeBadCheckDigit, 2, "IBAN check digits are wrong")
	}
	return lintErr{}
}

func lintNoZeroPrefix(v string, _ int) lintErr {
	if len(v) > 1 && v[0] == '0' {
		return bad(CodeBadValue, 0, "must not start with 0")
	}
	return lintErr{}
}

func lintHasNonDigit(v string, _ int) lintErr {
	if allDigits(v) {
		return bad(CodeBadValue, 0, "must contain a non-digit character")
	}
	return lintErr{}
}

// couponReader walks a North American coupon code: digits with
// variable-length-indicator (VLI) prefixed fields.
type couponReader struct {
	v   string
	p   int
	err lintErr
}

func (r *couponReader) fail(off int, msg string) {
	if r.err.code == "" {
		r.err = bad(CodeBadValue, off, msg)
	}
}

// digit reads one digit; allowed lists the acceptable values.
func (r *couponReader) digit(allowed, what string) int {
	if r.err.code != "" {
		return -1
	}
	if r.p >= len(r.v) {
		r.fail(r.p, "coupon: missing "+what)
		return -1
	}
	c := r.v[r.p]
	if strings.IndexByte(allowed, c) < 0 {
		r.fail(r.p, "coupon: invalid "+what)
		return -1
	}
	r.p++
	return int(c - '0')
}

// field skips n digits.
func (r *couponReader) field(n int, what string) string {
	if r.err.code != "" || n < 0 {
		return ""
	}
	if len(r.v)-r.p < n {
		r.fail(r.p, "coupon: truncated "+what)
		return ""
	}
	s := r.v[r.p : r.p+n]
	r.p += n
	return s
}

// vliField reads a VLI and the field it announces; the field is VLI+add
// digits long, or empty when the VLI equals empty (-1: no such value).
func (r *couponReader) vliField(allowed string, add, empty int, what string) {
	n := r.digit(allowed, what+" length")
	if n < 0 {
		return
	}
	if n == empty {
		return
	}
	r.field(n+add, what)
}

// lintCouponCode: the North American coupon code of AI (8110), "North
// American Coupon Application Guideline Using GS1 DataBar Expanded
// Symbols": a fixed head and optional fields 1-6 and 9 in that order.
func lintCouponCode(v string, ref int) lintErr {
	if !allDigits(v) {
		return bad(CodeBadValue, 0, "coupon code must be digits")
	}
	r := &couponReader{v: v}
	r.vliField("0123456", 6, -1, "company prefix")
	r.field(6, "offer code")
	r.vliField("12345", 0, -1, "save value")
	r.vliField("12345", 0, -1, "primary purchase requirement")
	r.digit("012349", "primary purchase requirement code")
	r.field(3, "primary purchase family code")
	var expiry string
	if r.err.code == "" && r.p < len(v) && v[r.p] == '1' { // additional purchase rules
		r.p++
		r.digit("0123", "additional purchase rules code")
		r.vliField("12345", 0, -1, "second purchase requirement")
		r.digit("012349", "second purchase requirement code")
		r.field(3, "second purchase family code")
		r.vliField("01234569", 6, 9, "second purchase company prefix")
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '2' { // third purchase
		r.p++
		r.vliField("12345", 0, -1, "third purchase requirement")
		r.digit("012349", "third purchase requirement code")
		r.field(3, "third purchase family code")
		r.vliField("01234569", 6, 9, "third purchase company prefix")
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '3' { // expiration date
		r.p++
		at := r.p
		if d := r.field(6, "expiration date"); d != "" {
			if lintYYMMDD(d, ref).code != "" {
				r.fail(at, "coupon: invalid expiration date")
			}
			expiry = d
		}
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '4' { // start date
		r.p++
		at := r.p
		if d := r.field(6, "start date"); d != "" {
			switch {
			case lintYYMMDD(d, ref).code != "":
				r.fail(at, "coupon: invalid start date")
			case expiry != "" && couponDate(d, ref) > couponDate(expiry, ref):
				r.fail(at, "coupon: expires before it starts")
			}
		}
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '5' { // serial number
		r.p++
		r.vliField("0123456789", 6, -1, "serial number")
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '6' { // retailer GCP/GLN
		r.p++
		r.vliField("1234567", 6, -1, "retailer company prefix or GLN")
	}
	if r.err.code == "" && r.p < len(v) && v[r.p] == '9' { // miscellaneous
		r.p++
		r.digit("01256", "save value code")
		r.digit("012", "save value applies to item")
		r.digit("0123456789", "store coupon flag")
		r.digit("01", "don't multiply flag")
	}
	if r.err.code == "" && r.p != len(v) {
		r.fail(r.p, "coupon: unexpected data")
	}
	return r.err
}

func couponDate(d string, ref int) int {
	return resolveYear(digits2(d, 0), ref)*10000 + digits2(d, 2)*100 + digits2(d, 4)
}

// lintCouponPosOffer: the positive offer file coupon of AI (8112), "GS1 AI
// (8112) Coupon Data Specification".
func lintCouponPosOffer(v string, _ int) lintErr {
	if !allDigits(v) {
		return bad(CodeBadValue, 0, "coupon code must be digits")
	}
	r := &couponReader{v: v}
	r.digit("01", "format code")
	r.vliField("0123456", 6, -1, "funder ID")
	r.field(6, "offer code")
	r.vliField("0123456789", 6, -1, "serial number")
	if r.err.code == "" && r.p != len(v) {
		r.fail(r.p, "coupon: unexpected data")
	}
	return r.err
}
