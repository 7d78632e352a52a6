package gs1

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testNow fixes the reference year for two-digit years (GenSpecs 7.12) so
// the tests do not depend on the day they run.
func testNow() time.Time { return time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC) }

var tp = Parser{Now: testNow}

// Keys used throughout: the GenSpecs example GTIN and SSCC, and keys built
// on the GS1 example company prefix 0614141 with computed check digits.
const (
	gtin  = "09506000134352"     // GenSpecs example GTIN
	sscc  = "106141411234567897" // GenSpecs example SSCC
	gln   = "0614141000036"      // GLN, GCP 0614141
	gsrn  = "061414100000000014" // GSRN, GCP 0614141
	gdti  = "0614141000012"      // GDTI document type part
	gsin  = "06141411234567890"  // GSIN
	gtin8 = "96385074"           // EAN-8
	upcA  = "036000291452"       // UPC-A
)

type parseCase struct {
	name  string
	in    string
	codes []string // expected error codes in order; nil means valid
	want  string   // expected Bracketed() when not ""
}

// parseCases are written from the rules and examples of the GS1 General
// Specifications (GenSpecs), section numbers in the names where they
// apply, and GS1's published examples. Every case asserts the exact error
// codes.
var parseCases = []parseCase{
	// ---- valid data in each form (GenSpecs 7.8, 5.1.2) ----
	{name: "DataMatrix typical 01 17 10 21", in: "]d201" + gtin + "17271231" + "10ABC123\x1d21XYZ789", want: "(01)" + gtin + "(17)271231(10)ABC123(21)XYZ789"},
	{name: "GS1-128 ]C1", in: "]C101" + gtin + "10LOT1", want: "(01)" + gtin + "(10)LOT1"},
	{name: "GS1 QR ]Q3", in: "]Q301" + gtin + "21SER", want: "(01)" + gtin + "(21)SER"},
	{name: "GS1 QR with ECI ]Q4", in: "]Q401" + gtin, want: "(01)" + gtin},
	{name: "DataBar ]e0", in: "]e001" + gtin + "3103000750", want: "(01)" + gtin + "(3103)000750"},
	{name: "DotCode ]J1", in: "]J101" + gtin, want: "(01)" + gtin},
	{name: "DataMatrix with ECI ]d5", in: "]d501" + gtin, want: "(01)" + gtin},
	{name: "no symbology identifier", in: "01" + gtin + "21A1", want: "(01)" + gtin + "(21)A1"},
	{name: "leading FNC1 as GS", in: "\x1d01" + gtin, want: "(01)" + gtin},
	{name: "trailing GS tolerated", in: "01" + gtin + "10L\x1d", want: "(01)" + gtin + "(10)L"},
	{name: "redundant GS after predefined length", in: "01" + gtin + "\x1d10L", want: "(01)" + gtin + "(10)L"},
	{name: "predefined run without FNC1 7.8.5", in: "01" + gtin + "17271231" + "11250101" + "3103000500", want: "(01)" + gtin + "(17)271231(11)250101(3103)000500"},
	{name: "missing FNC1 swallows next AI into the lot", in: "01" + gtin + "10ABC21XYZ", want: "(01)" + gtin + "(10)ABC21XYZ"},
	{name: "bracketed", in: "(01)" + gtin + "(17)271231(10)ABC(21)XYZ", want: "(01)" + gtin + "(17)271231(10)ABC(21)XYZ"},
	{name: "bracketed escaped paren", in: `(01)` + gtin + `(21)A\(B)C`, want: `(01)` + gtin + `(21)A\(B)C`},
	{name: "bracketed close paren in value", in: "(01)" + gtin + "(21)A)B", want: "(01)" + gtin + "(21)A)B"},
	{name: "bracketed 4-digit AI", in: "(01)" + gtin + "(3922)799", codes: []string{CodeMissingRequired}},
	{name: "SSCC alone 3.2", in: "(00)" + sscc, want: "(00)" + sscc},
	{name: "SSCC with gross weight", in: "(00)" + sscc + "(3300)000100", want: "(00)" + sscc + "(3300)000100"},
	{name: "SSCC with count and content", in: "(00)" + sscc + "(02)" + gtin + "(37)24"},
	{name: "SSCC with route", in: "(00)" + sscc + "(403)ROUTE-7"},
	{name: "GLN 3.7.9", in: "(414)" + gln},
	{name: "GLN with extension", in: "(414)" + gln + "(254)DOOR-4"},
	{name: "ship-to GLN alone", in: "(410)" + gln},
	{name: "GIAI", in: "(8004)0614141ABC-123"},
	{name: "GRAI", in: "(8003)0" + gdti + "BOX7"},
	{name: "GRAI without serial", in: "(8003)0" + gdti},
	{name: "GDTI", in: "(253)" + gdti + "DOC1"},
	{name: "GCN", in: "(255)" + gdti + "123456"},
	{name: "GSRN provider", in: "(8017)" + gsrn},
	{name: "GSRN recipient with SRIN", in: "(8018)" + gsrn + "(8019)123"},
	{name: "GSIN", in: "(402)" + gsin},
	{name: "GINC", in: "(401)0614141CONSIGNMENT"},
	{name: "ITIP piece 1 of 2", in: "(8006)" + gtin + "0102(21)S1"},
	{name: "CPID with serial", in: "(8010)0614141ABC#/-(8011)123"},
	{name: "GMN 7.9.5 example", in: "(8013)1987654Ad4X4bL5ttr2310c2K"},
	{name: "MUDI with GTIN", in: "(01)" + gtin + "(8014)1987654Ad4X4bL5ttr2310c2K"},
	{name: "net weight kg", in: "(01)" + gtin + "(3103)000750"},
	{name: "net weight and length", in: "(01)" + gtin + "(3103)000750(3112)001200"},
	{name: "variable count", in: "(01)" + gtin + "(30)12"},
	{name: "price in local currency", in: "(01)" + gtin + "(3103)000500(3922)799"},
	{name: "price with ISO currency", in: "(01)" + gtin + "(3103)000500(3932)978799"},
	{name: "currency 999 no currency", in: "(01)" + gtin + "(3103)000500(3932)999799"},
	{name: "country of origin", in: "(01)" + gtin + "(422)250"},
	{name: "ship to postal code with country", in: "(421)250F-75001"},
	{name: "countries of initial processing", in: "(01)" + gtin + "(423)250276"},
	{name: "five countries", in: "(01)" + gtin + "(423)250276380724040"},
	{name: "ship to country alpha-2", in: "(00)" + sscc + "(4307)FR"},
	{name: "ship to geo GenSpecs example", in: "(00)" + sscc + "(4309)02790858483015297971"},
	{name: "percent-encoded name", in: "(00)" + sscc + "(4301)Jean%20Dupont"},
	{name: "not before delivery", in: "(00)" + sscc + "(4324)2507011230"},
	{name: "release date", in: "(00)" + sscc + "(4326)250701"},
	{name: "max temperature negative", in: "(00)" + sscc + "(4330)000500-"},
	{name: "max temperature", in: "(00)" + sscc + "(4331)002000"},
	{name: "dangerous goods yes", in: "(00)" + sscc + "(4321)1"},
	{name: "expiry date and time", in: "(01)" + gtin + "(7003)2512311230"},
	{name: "harvest date range", in: "(01)" + gtin + "(7007)250101250131"},
	{name: "harvest single date", in: "(01)" + gtin + "(7007)250101"},
	{name: "test by date with time", in: "(01)" + gtin + "(7011)2501011200"},
	{name: "production date time hh", in: "(01)" + gtin + "(8008)25010112"},
	{name: "production date time hhmm", in: "(01)" + gtin + "(8008)2501011230"},
	{name: "production date time hhmmss", in: "(01)" + gtin + "(8008)250101123045"},
	{name: "processor with 999", in: "(01)" + gtin + "(7030)999PLANT1"},
	{name: "UIC with extension", in: "(7040)1ABC"},
	{name: "freight unit type", in: "(00)" + sscc + "(7041)BX"},
	{name: "NHRN PZN", in: "(01)" + gtin + "(710)12345678"},
	{name: "certification", in: "(01)" + gtin + "(7230)EMCERT1"},
	{name: "AIDC media type", in: "(8018)" + gsrn + "(7241)01"},
	{name: "date of birth leap day 2000", in: "(8018)" + gsrn + "(7250)20000229"},
	{name: "biological sex", in: "(8018)" + gsrn + "(7252)2"},
	{name: "birth sequence", in: "(8018)" + gsrn + "(7259)BABY%20A(7258)1/2"},
	{name: "dimensions", in: "(01)" + gtin + "(8001)01000050000111"},
	{name: "IBAN", in: "(415)" + gln + "(8020)INV-1(8007)DE91100000000123456789"},
	{name: "digital signature", in: "(00)" + sscc + "(8030)QUJD"},
	{name: "digital signature padded", in: "(00)" + sscc + "(8030)QU="},
	{name: "DIGSIG padding only to a multiple of 3 like GS1's linter", in: "(00)" + sscc + "(8030)QUI=", codes: []string{CodeBadCharset}},
	{name: "coupon 8110", in: "(8110)012345612345611110123"},
	{name: "positive offer coupon 8112", in: "(8112)001234561234560123456"},
	{name: "product URL", in: "(01)" + gtin + "(8200)http://example.com/p"},
	{name: "internal 90", in: "(90)ANYTHING"},
	{name: "internal 99", in: "(99)X1"},
	{name: "secondary serial", in: "(01)" + gtin + "(21)S1(250)P1"},
	{name: "CPV", in: "(01)" + gtin + "(22)V1"},
	{name: "TPX", in: "(01)" + gtin + "(235)TPX123"},
	{name: "same AI twice same value 4.14.1", in: "(01)" + gtin + "(10)L1(10)L1"},
	{name: "digital signature with GTIN and serial", in: "(01)" + gtin + "(21)S(8030)QUJD"},
	{name: "content with count", in: "(02)" + gtin + "(37)12(00)" + sscc},
	{name: "ITIP content", in: "(8026)" + gtin + "0102(37)2(00)" + sscc},

	// ---- dates (GenSpecs 7.12, 3.4) ----
	{name: "expiry", in: "(01)" + gtin + "(17)251231"},
	{name: "expiry DD=00 3.4.7", in: "(01)" + gtin + "(17)251200"},
	{name: "best before DD=00", in: "(01)" + gtin + "(15)260200"},
	{name: "expiry leap day 2024", in: "(01)" + gtin + "(17)240229"},
	{name: "production date 2000 leap", in: "(01)" + gtin + "(11)000229"},
	{name: "expiry month 13", in: "(01)" + gtin + "(17)251301", codes: []string{CodeBadDate}},
	{name: "expiry month 00", in: "(01)" + gtin + "(17)250001", codes: []string{CodeBadDate}},
	{name: "expiry 30 February", in: "(01)" + gtin + "(17)250230", codes: []string{CodeBadDate}},
	{name: "expiry 29 February common year", in: "(01)" + gtin + "(17)250229", codes: []string{CodeBadDate}},
	{name: "31 November", in: "(01)" + gtin + "(15)251131", codes: []string{CodeBadDate}},
	{name: "day 32", in: "(01)" + gtin + "(16)250132", codes: []string{CodeBadDate}},
	{name: "release date DD=00 not allowed", in: "(00)" + sscc + "(4326)250100", codes: []string{CodeBadDate}},
	{name: "first freeze DD=00 not allowed", in: "(01)" + gtin + "(7006)250100", codes: []string{CodeBadDate}},
	{name: "harvest second date bad", in: "(01)" + gtin + "(7007)250101251301", codes: []string{CodeBadDate}},
	{name: "date of birth 1900 not leap", in: "(8018)" + gsrn + "(7250)19000229", codes: []string{CodeBadDate}},
	{name: "expiry with letters", in: "(01)" + gtin + "(17)25A231", codes: []string{CodeBadCharset}},
	{name: "expiry too short", in: "(01)" + gtin + "(17)2512", codes: []string{CodeTooShort}},
	{name: "expiry too long bracketed", in: "(01)" + gtin + "(17)2512310", codes: []string{CodeTooLong}},

	// ---- times ----
	{name: "expiry time hour 24", in: "(01)" + gtin + "(7003)2512312430", codes: []string{CodeBadTime}},
	{name: "expiry time minute 60", in: "(01)" + gtin + "(7003)2512312360", codes: []string{CodeBadTime}},
	{name: "production time hour 25", in: "(01)" + gtin + "(8008)25010125", codes: []string{CodeBadTime}},
	{name: "production time second 61", in: "(01)" + gtin + "(8008)250101123061", codes: []string{CodeBadTime}},
	{name: "production time partial minute", in: "(01)" + gtin + "(8008)250101123", codes: []string{CodeTooShort}},
	{name: "not before delivery bad time", in: "(00)" + sscc + "(4324)2507019900", codes: []string{CodeBadTime}},

	// ---- check digits (GenSpecs 7.9) ----
	{name: "GTIN bad check digit", in: "(01)09506000134353", codes: []string{CodeBadCheckDigit}},
	{name: "GTIN bad check digit element string", in: "]d20109506000134350", codes: []string{CodeBadCheckDigit}},
	{name: "SSCC bad check digit", in: "(00)106141411234567890", codes: []string{CodeBadCheckDigit}},
	{name: "GLN bad check digit", in: "(414)0614141000037", codes: []string{CodeBadCheckDigit}},
	{name: "GSRN bad check digit", in: "(8017)061414100000000015", codes: []string{CodeBadCheckDigit}},
	{name: "GSIN bad check digit", in: "(402)06141411234567891", codes: []string{CodeBadCheckDigit}},
	{name: "GRAI bad check digit", in: "(8003)00614141000013", codes: []string{CodeBadCheckDigit}},
	{name: "ITIP bad check digit", in: "(8006)095060001343530102", codes: []string{CodeBadCheckDigit}},
	{name: "GMN bad check pair", in: "(8013)1987654Ad4X4bL5ttr2310cXK", codes: []string{CodeBadCheckPair}},
	{name: "GMN check pair outside CSET 32", in: "(8013)1987654Ad4X4bL5ttr2310c2a", codes: []string{CodeBadCheckPair}},
	{name: "IBAN bad check digits", in: "(415)" + gln + "(8020)INV-1(8007)DE91100000000123456780", codes: []string{CodeBadCheckDigit}},
	{name: "content GTIN bad check digit", in: "(02)09506000134351(37)1(00)" + sscc, codes: []string{CodeBadCheckDigit}},
	{name: "two bad check digits both reported", in: "(00)106141411234567890(02)09506000134351(37)1", codes: []string{CodeBadCheckDigit, CodeBadCheckDigit}},

	// ---- GS1 Company Prefix (key linter) ----
	{name: "GIAI without company prefix", in: "(8004)ABC123", codes: []string{CodeBadGCP}},
	{name: "GIAI too short for a prefix", in: "(8004)061", codes: []string{CodeBadGCP}},
	{name: "GINC letters first", in: "(401)X614141", codes: []string{CodeBadGCP}},
	{name: "CPID without prefix", in: "(8010)ABCD", codes: []string{CodeBadGCP}},

	// ---- code lists ----
	{name: "country 999 not ISO 3166", in: "(01)" + gtin + "(422)999", codes: []string{CodeBadCountry}},
	{name: "country 000", in: "(01)" + gtin + "(424)000", codes: []string{CodeBadCountry}},
	{name: "second country bad", in: "(01)" + gtin + "(423)250999", codes: []string{CodeBadCountry}},
	{name: "partial second country", in: "(01)" + gtin + "(423)2502", codes: []string{CodeTooShort}},
	{name: "six countries", in: "(01)" + gtin + "(425)250276380724040056", codes: []string{CodeTooLong}},
	{name: "ship to postal code bad country", in: "(421)001F-75001", codes: []string{CodeBadCountry}},
	{name: "processor country bad", in: "(01)" + gtin + "(7031)998PLANT", codes: []string{CodeBadCountry}},
	{name: "alpha-2 XX", in: "(00)" + sscc + "(4307)XX", codes: []string{CodeBadCountry}},
	{name: "alpha-2 lower case", in: "(00)" + sscc + "(4317)fr", codes: []string{CodeBadCountry}},
	{name: "currency 000", in: "(01)" + gtin + "(3103)000500(3932)000799", codes: []string{CodeBadCurrency}},
	{name: "amount currency bad", in: "(415)" + gln + "(8020)R1(3912)123100", codes: []string{CodeBadCurrency}},
	{name: "package type unknown", in: "(00)" + sscc + "(7041)QQQ", codes: []string{CodeBadValue}},
	{name: "media type 50", in: "(8018)" + gsrn + "(7241)50", codes: []string{CodeBadValue}},
	{name: "biological sex 3", in: "(8018)" + gsrn + "(7252)3", codes: []string{CodeBadValue}},
	{name: "IBAN bad country", in: "(415)" + gln + "(8020)R1(8007)XX91100000000123456789", codes: []string{CodeBadCountry}},

	// ---- other content rules ----
	{name: "bad percent-encoding", in: "(00)" + sscc + "(4301)Jean%2", codes: []string{CodeBadValue}},
	{name: "percent with non-hex", in: "(00)" + sscc + "(4302)A%G0", codes: []string{CodeBadValue}},
	{name: "latitude above 90", in: "(00)" + sscc + "(4309)18000000013015297971", codes: []string{CodeBadValue}},
	{name: "longitude above 360", in: "(00)" + sscc + "(4309)02790858483600000001", codes: []string{CodeBadValue}},
	{name: "temperature sign not hyphen", in: "(00)" + sscc + "(4330)000500+", codes: []string{CodeBadValue}},
	{name: "yes/no 2", in: "(00)" + sscc + "(4322)2", codes: []string{CodeBadValue}},
	{name: "dimensions zero length", in: "(01)" + gtin + "(8001)00000050000111", codes: []string{CodeBadValue}},
	{name: "dimensions bad winding", in: "(01)" + gtin + "(8001)01000050000151", codes: []string{CodeBadValue}},
	{name: "ITIP piece 3 of 2", in: "(8006)" + gtin + "0302", codes: []string{CodeBadValue}},
	{name: "ITIP piece 0", in: "(8006)" + gtin + "0002", codes: []string{CodeBadValue}},
	{name: "birth sequence 2/1", in: "(8018)" + gsrn + "(7259)B(7258)2/1", codes: []string{CodeBadValue}},
	{name: "birth sequence no slash", in: "(8018)" + gsrn + "(7259)B(7258)123", codes: []string{CodeBadValue}},
	{name: "importer index bad", in: "(7040)1AB!", codes: []string{CodeBadValue}},
	{name: "GRAI first digit not zero", in: "(8003)1" + gdti, codes: []string{CodeBadValue}},
	{name: "CPID serial zero prefix", in: "(8010)0614141ABC(8011)0123", codes: []string{CodeBadValue}},
	{name: "coupon truncated", in: "(8110)0123456", codes: []string{CodeBadValue}},
	{name: "coupon letters", in: "(8110)01234561234561111012A", codes: []string{CodeBadValue}},
	{name: "coupon excess data", in: "(8110)0123456123456111101238", codes: []string{CodeBadValue}},
	{name: "positive offer bad format code", in: "(8112)201234561234560123456", codes: []string{CodeBadValue}},
	{name: "DIGSIG bad padding", in: "(00)" + sscc + "(8030)QU=D", codes: []string{CodeBadCharset}},
	{name: "DIGSIG outside CSET 64", in: "(00)" + sscc + "(8030)QU+D", codes: []string{CodeBadCharset}},

	// ---- character sets (GenSpecs 7.11) ----
	{name: "space in lot", in: "(01)" + gtin + "(10)AB CD", codes: []string{CodeBadCharset}},
	{name: "tilde in serial", in: "(01)" + gtin + "(21)AB~", codes: []string{CodeBadCharset}},
	{name: "non-ASCII in serial", in: "(01)" + gtin + "(21)ÄBC", codes: []string{CodeBadCharset}},
	{name: "hash in serial not CSET 82", in: "(01)" + gtin + "(21)A#1", codes: []string{CodeBadCharset}},
	{name: "letter in GTIN", in: "(01)0950600013435A", codes: []string{CodeBadCharset}},
	{name: "lower case in CPID CSET 39", in: "(8010)0614141abc", codes: []string{CodeBadCharset}},
	{name: "control character in lot", in: "01" + gtin + "10A\x07B", codes: []string{CodeBadCharset}},
	{name: "letters in count", in: "(01)" + gtin + "(30)1A", codes: []string{CodeBadCharset}},

	// ---- lengths ----
	{name: "GTIN 13 digits bracketed", in: "(01)0950600013435", codes: []string{CodeTooShort}},
	{name: "GTIN 15 digits bracketed", in: "(01)095060001343520", codes: []string{CodeTooLong}},
	{name: "GTIN truncated element string", in: "010950600013435", codes: []string{CodeTooShort}},
	{name: "GS inside predefined length", in: "0109506000\x1d134352", codes: []string{CodeTooShort}},
	{name: "lot 21 characters", in: "(01)" + gtin + "(10)" + strings.Repeat("A", 21), codes: []string{CodeTooLong}},
	{name: "lot 20 characters", in: "(01)" + gtin + "(10)" + strings.Repeat("A", 20)},
	{name: "serial 21 characters element string", in: "01" + gtin + "21" + strings.Repeat("9", 21), codes: []string{CodeTooLong}},
	{name: "NSN needs FNC1", in: "(01)" + gtin + "(7001)12345678901231", codes: []string{CodeTooLong}},
	{name: "NSN 12 digits", in: "(01)" + gtin + "(7001)123456789012", codes: []string{CodeTooShort}},
	{name: "variant 1 digit", in: "(01)" + gtin + "(20)1", codes: []string{CodeTooShort}},
	{name: "AI without data bracketed", in: "(01)", codes: []string{CodeTooShort}},
	{name: "AIs without data element string", in: "]d2010950600013435210\x1d21", codes: []string{CodeTooShort, CodeTooShort}},
	{name: "AI without data before GS", in: "01" + gtin + "10\x1d21ABC", codes: []string{CodeTooShort}},
	{name: "internal 90 31 characters", in: "(90)" + strings.Repeat("X", 31), codes: []string{CodeTooLong}},
	{name: "URL 71 characters", in: "(01)" + gtin + "(8200)" + strings.Repeat("h", 71), codes: []string{CodeTooLong}},
	{name: "GSRN 17 digits", in: "(8017)06141410000000001", codes: []string{CodeTooShort}},

	// ---- AIs and syntax ----
	{name: "unknown AI 23", in: "2312345", codes: []string{CodeUnknownAI}},
	{name: "unknown AI after valid", in: "01" + gtin + "2345", codes: []string{CodeUnknownAI}},
	{name: "unknown AI bracketed", in: "(23)12", codes: []string{CodeUnknownAI}},
	{name: "unknown 3-digit AI whose prefix is an AI", in: "(999)1", codes: []string{CodeUnknownAI}},
	{name: "unknown 4-digit AI", in: "(3106)000100", codes: []string{CodeUnknownAI}},
	{name: "retired AI 3940-3943 range end", in: "(255)" + gdti + "(3944)1000", codes: []string{CodeUnknownAI}},
	{name: "letters where an AI must be", in: "ABC", codes: []string{CodeUnknownAI}},
	{name: "single digit", in: "0", codes: []string{CodeUnknownAI}},
	{name: "bracket not closed", in: "(01" + gtin, codes: []string{CodeSyntax}},
	{name: "one-digit AI", in: "(1)23", codes: []string{CodeSyntax}},
	{name: "five-digit AI", in: "(01234)5", codes: []string{CodeSyntax}},
	{name: "letters as AI", in: "(AB)12", codes: []string{CodeSyntax}},
	{name: "empty brackets", in: "()", codes: []string{CodeSyntax}},
	{name: "empty input", in: "", codes: []string{CodeEmpty}},
	{name: "only symbology identifier", in: "]d2", codes: []string{CodeEmpty}},
	{name: "only GS", in: "\x1d", codes: []string{CodeEmpty}},
	{name: "Code 128 without FNC1", in: "]C00109506000134352", codes: []string{CodeNotGS1}},
	{name: "plain DataMatrix", in: "]d1ABC", codes: []string{CodeNotGS1}},

	// ---- EAN/UPC and ITF-14 carriers (GenSpecs 3.3.2, 5.2) ----
	{name: "EAN-13", in: "]E09506000134352", want: "(01)" + gtin},
	{name: "UPC-A as 12 digits", in: "]E0" + upcA, want: "(01)00" + upcA},
	{name: "EAN-8", in: "]E4" + gtin8, want: "(01)000000" + gtin8},
	{name: "EAN-13 with 2-digit add-on", in: "]E3950600013435212", want: "(01)" + gtin},
	{name: "ITF-14", in: "]I1" + gtin, want: "(01)" + gtin},
	{name: "EAN-13 bad check digit", in: "]E09506000134353", codes: []string{CodeBadCheckDigit}},
	{name: "EAN-13 wrong length", in: "]E0123", codes: []string{CodeTooShort}},
	{name: "EAN-13 letters", in: "]E0950600013435A", codes: []string{CodeBadCharset}},

	// ---- pairing rules (GenSpecs 4.14, dictionary req/ex) ----
	{name: "serial without GTIN", in: "(21)ABC", codes: []string{CodeMissingRequired}},
	{name: "serial without GTIN element string", in: "21ABC", codes: []string{CodeMissingRequired}},
	{name: "lot without GTIN", in: "(10)ABC", codes: []string{CodeMissingRequired}},
	{name: "expiry without GTIN", in: "(17)251231", codes: []string{CodeMissingRequired}},
	{name: "GTIN with count 37", in: "(01)" + gtin + "(37)5", codes: []string{CodeExcludedPair, CodeMissingRequired, CodeMissingRequired}},
	{name: "content without count", in: "(02)" + gtin, codes: []string{CodeMissingRequired}},
	{name: "count without SSCC", in: "(02)" + gtin + "(37)5", codes: []string{CodeMissingRequired}},
	{name: "GTIN and content", in: "(01)" + gtin + "(02)" + gtin + "(37)1(00)" + sscc, codes: []string{CodeExcludedPair, CodeExcludedPair}},
	{name: "two net weights kg", in: "(01)" + gtin + "(3100)000100(3101)000200", codes: []string{CodeExcludedPair}},
	{name: "net weight kg and lb allowed", in: "(01)" + gtin + "(3100)000100(3200)000220"},
	{name: "same AI different values", in: "(01)" + gtin + "(10)L1(10)L2", codes: []string{CodeDuplicateAI}},
	{name: "same GTIN twice different", in: "(01)" + gtin + "(01)95060001343597", codes: []string{CodeDuplicateAI}},
	{name: "ITIP with count", in: "(8006)" + gtin + "0102(37)5", codes: []string{CodeExcludedPair, CodeMissingRequired, CodeMissingRequired}},
	{name: "ITIP with GTIN", in: "(8006)" + gtin + "0102(01)" + gtin, codes: []string{CodeExcludedPair}},
	{name: "secondary serial without serial", in: "(01)" + gtin + "(250)P1", codes: []string{CodeMissingRequired}},
	{name: "serial and TPX excluded", in: "(01)" + gtin + "(21)S(235)T", codes: []string{CodeExcludedPair}},
	{name: "DIGSIG needs a key", in: "(8030)QUJD", codes: []string{CodeMissingRequired}},
	{name: "DIGSIG GTIN needs serial", in: "(01)" + gtin + "(8030)QUJD", codes: []string{CodeMissingRequired}},
	{name: "dangerous goods without SSCC", in: "(4321)1", codes: []string{CodeMissingRequired}},
	{name: "active potency without lot", in: "(01)" + gtin + "(7004)50", codes: []string{CodeMissingRequired}},
	{name: "active potency with lot", in: "(01)" + gtin + "(10)L(7004)50"},
	{name: "GLN extension without GLN", in: "(254)A", codes: []string{CodeMissingRequired}},
	{name: "pay-to without invoice reference", in: "(415)" + gln, codes: []string{CodeMissingRequired}},
	{name: "ship to post and country post excluded", in: "(420)75001(421)250F-75001", codes: []string{CodeExcludedPair}},
	{name: "origin and full process excluded", in: "(01)" + gtin + "(422)250(426)250", codes: []string{CodeExcludedPair}},
	{name: "GCN with GTIN", in: "(255)" + gdti + "(01)" + gtin, codes: []string{CodeExcludedPair}},
	{name: "max temperatures F and C", in: "(00)" + sscc + "(4330)000500(4331)002000", codes: []string{CodeExcludedPair}},
	{name: "GSRN provider and recipient", in: "(8017)" + gsrn + "(8018)" + gsrn, codes: []string{CodeExcludedPair}},
	{name: "birth sequence without baby", in: "(8018)" + gsrn + "(7258)1/2", codes: []string{CodeMissingRequired}},
	{name: "family name with full name", in: "(8018)" + gsrn + "(7253)DOE(7256)JOHN%20DOE", codes: []string{CodeExcludedPair}},
	{name: "price needs a measure", in: "(01)" + gtin + "(3922)799", codes: []string{CodeMissingRequired}},
	{name: "amount payable two currencies", in: "(415)" + gln + "(8020)R1(3911)978100(3912)840100", codes: []string{CodeExcludedPair}},
	{name: "points need GCN", in: "(8111)0100", codes: []string{CodeMissingRequired}},
	{name: "points with GCN", in: "(255)" + gdti + "(8111)0100"},
	{name: "MUDI without GTIN", in: "(8014)1987654Ad4X4bL5ttr2310c2K", codes: []string{CodeMissingRequired}},
	{name: "product URL without GTIN", in: "(8200)http://example.com", codes: []string{CodeMissingRequired}},
	{name: "refurbished lot without production location", in: "(01)" + gtin + "(7020)R1", codes: []string{CodeMissingRequired}},
	{name: "pairing skipped after a broken structure", in: "21ABC\x1d23", codes: []string{CodeUnknownAI}},
}

func TestParseCases(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tp.Parse(tc.in)
			if r == nil {
				t.Fatal("nil Result")
			}
			got := codesOf(err)
			if !reflect.DeepEqual(got, tc.codes) {
				t.Fatalf("Parse(%q) codes = %v, want %v (err: %v)", tc.in, got, tc.codes, err)
			}
			if tc.want != "" && r.Bracketed() != tc.want {
				t.Fatalf("Bracketed() = %q, want %q", r.Bracketed(), tc.want)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.codes[0] {
					t.Fatalf("errors.As did not find the first *Error: %v", err)
				}
				if e.Pos < 0 || e.Pos > len(tc.in) {
					t.Fatalf("position %d outside the input", e.Pos)
				}
				if e.Error() == "" || err.Error() == "" {
					t.Fatal("empty error text")
				}
			}
		})
	}
}

// TestParseCaseCount keeps the promise of issue 6: at least 150 table
// cases with their error kinds asserted.
func TestParseCaseCount(t *testing.T) {
	dl := len(dlCases)
	if n := len(parseCases) + dl; n < 150 {
		t.Fatalf("%d GS1 cases, want at least 150", n)
	}
	t.Logf("%d parse cases + %d Digital Link cases", len(parseCases), dl)
}

func codesOf(err error) []string {
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		return []string{"not Errors: " + err.Error()}
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Code
	}
	return out
}

func TestErrorDetails(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Error
	}{
		{"check digit position", "]d20109506000134353", Error{Code: CodeBadCheckDigit, AI: "01", Pos: 18}},
		{"unknown AI position", "01" + gtin + "2345", Error{Code: CodeUnknownAI, Pos: 16}},
		{"date month position", "(01)" + gtin + "(17)251301", Error{Code: CodeBadDate, AI: "17", Pos: 24}},
		{"charset position", "(01)" + gtin + "(10)AB CD", Error{Code: CodeBadCharset, AI: "10", Pos: 24}},
		{"requirement names the AI", "(21)ABC", Error{Code: CodeMissingRequired, AI: "21", Pos: 0}},
		{"too long points at the excess", "(01)" + gtin + "(10)" + strings.Repeat("A", 21), Error{Code: CodeTooLong, AI: "10", Pos: 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tp.Parse(tc.in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("no *Error in %v", err)
			}
			if e.Code != tc.want.Code || e.AI != tc.want.AI || e.Pos != tc.want.Pos {
				t.Fatalf("got {%s %s %d}, want {%s %s %d} (%v)", e.Code, e.AI, e.Pos, tc.want.Code, tc.want.AI, tc.want.Pos, e)
			}
			if e.Msg == "" {
				t.Fatal("no message")
			}
		})
	}
	if got := (&Error{Code: "x", AI: "01", Pos: 3, Msg: "m"}).Error(); got != "gs1: (01) m at 3 [x]" {
		t.Fatalf("Error() = %q", got)
	}
	es := Errors{{Code: "a", Msg: "m"}, {Code: "b", Msg: "n"}}
	if !strings.Contains(es.Error(), "1 more") || !es.Has("b") || es.Has("c") {
		t.Fatalf("Errors = %q", es.Error())
	}
}

func TestLookupAndRendering(t *testing.T) {
	r, err := tp.Parse("]d201" + gtin + "17271231" + "10ABC\x1d21X(Y")
	if err != nil {
		t.Fatal(err)
	}
	if r.Symbology != "]d2" || r.Form != FormElementString {
		t.Fatalf("symbology %q form %q", r.Symbology, r.Form)
	}
	if v, ok := r.Lookup("10"); !ok || v != "ABC" {
		t.Fatalf("Lookup(10) = %q, %v", v, ok)
	}
	if _, ok := r.Lookup("00"); ok {
		t.Fatal("Lookup(00) found something")
	}
	if got, want := r.ElementString(), "01"+gtin+"17271231"+"10ABC\x1d21X(Y"; got != want {
		t.Fatalf("ElementString() = %q, want %q", got, want)
	}
	if got, want := r.Bracketed(), "(01)"+gtin+`(17)271231(10)ABC(21)X\(Y`; got != want {
		t.Fatalf("Bracketed() = %q, want %q", got, want)
	}
	if d, ok := r.Date("17"); !ok || d.Format("2006-01-02") != "2027-12-31" {
		t.Fatalf("Date(17) = %v, %v", d, ok)
	}
}

func TestDates(t *testing.T) {
	for _, tc := range []struct {
		in, ai, want string
	}{
		{"(01)" + gtin + "(17)271231", "17", "2027-12-31"},
		{"(01)" + gtin + "(17)240200", "17", "2024-02-29"}, // DD=00: last day, leap year
		{"(01)" + gtin + "(17)250200", "17", "2025-02-28"}, // DD=00: last day
		{"(01)" + gtin + "(15)751231", "15", "2075-12-31"}, // 50 years ahead of 2025
		{"(01)" + gtin + "(11)760101", "11", "1976-01-01"}, // 51 ahead → previous century
		{"(01)" + gtin + "(7003)2601011230", "7003", "2026-01-01"},
		{"(8018)" + gsrn + "(7250)19991231", "7250", "1999-12-31"},
	} {
		r, err := tp.Parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		d, ok := r.Date(tc.ai)
		if !ok || d.Format("2006-01-02") != tc.want {
			t.Fatalf("%s: Date(%s) = %v, %v; want %s", tc.in, tc.ai, d, ok, tc.want)
		}
	}
	r, _ := tp.Parse("(01)" + gtin + "(10)ABC")
	if _, ok := r.Date("10"); ok {
		t.Fatal("a lot is not a date")
	}
	if _, ok := r.Date("17"); ok {
		t.Fatal("absent AI gave a date")
	}
	for _, tc := range []struct {
		yy, ref, want int
	}{
		{0, 2025, 2000}, {75, 2025, 2075}, {76, 2025, 1976}, {99, 2025, 1999},
		{0, 2060, 2100}, {10, 2060, 2110}, {11, 2060, 2011}, {9, 2060, 2109},
		{51, 2000, 1951}, {50, 2000, 2050}, {49, 2099, 2149},
	} {
		if got := resolveYear(tc.yy, tc.ref); got != tc.want {
			t.Errorf("resolveYear(%02d, %d) = %d, want %d", tc.yy, tc.ref, got, tc.want)
		}
	}
	if d, ok := ParseDate("271200", testNow()); !ok || d.Day() != 31 {
		t.Fatalf("ParseDate = %v, %v", d, ok)
	}
	for _, bad := range []string{"", "2712", "27123", "271332", "2702300", "ab1231"} {
		if _, ok := ParseDate(bad, testNow()); ok {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}

func TestSkipPairingAndCheckPairs(t *testing.T) {
	p := Parser{Now: testNow, SkipPairing: true}
	r, err := p.Parse("(21)ABC")
	if err != nil {
		t.Fatalf("SkipPairing still checked pairs: %v", err)
	}
	// Merging two symbols of one item (GenSpecs 4.14): the serial's GTIN
	// comes from the other symbol.
	other, _ := p.Parse("]E09506000134352")
	merged := append(append([]Element{}, other.Elements...), r.Elements...)
	if errs := CheckPairs(merged); len(errs) != 0 {
		t.Fatalf("merged: %v", errs)
	}
	if errs := CheckPairs(r.Elements); !errs.Has(CodeMissingRequired) {
		t.Fatalf("alone: %v", errs)
	}
	if errs := CheckPairs([]Element{{AI: "77", Value: "x"}}); len(errs) != 0 {
		t.Fatalf("unknown AI: %v", errs)
	}
}

func TestSplitAIM(t *testing.T) {
	for _, tc := range []struct{ in, sym, rest string }{
		{"]d2010", "]d2", "010"},
		{"]C1", "]C1", ""},
		{"]c", "", "]c"},
		{"]1a", "", "]1a"},
		{"]d!x", "", "]d!x"},
		{"0101", "", "0101"},
	} {
		sym, rest := SplitAIM(tc.in)
		if sym != tc.sym || rest != tc.rest {
			t.Errorf("SplitAIM(%q) = %q, %q", tc.in, sym, rest)
		}
	}
	for sym, want := range map[string]bool{"]C1": true, "]d2": true, "]Q3": true, "]e0": true, "]J1": true, "]E0": true, "]I1": true, "]C0": false, "]d1": false, "]Q1": false, "": false} {
		if IsGS1Symbology(sym) != want {
			t.Errorf("IsGS1Symbology(%q) != %v", sym, want)
		}
	}
}

// TestRoundTrip is the property of issue 6: bracketed → element string →
// bracketed gives back the input for valid data.
func TestRoundTrip(t *testing.T) {
	n := 0
	for _, tc := range parseCases {
		if tc.codes != nil || !strings.HasPrefix(tc.in, "(") {
			continue
		}
		n++
		checkRoundTrip(t, tc.in)
	}
	if n < 50 {
		t.Fatalf("only %d bracketed valid cases", n)
	}
}

func checkRoundTrip(t *testing.T, bracketed string) {
	t.Helper()
	r1, err := tp.ParseBracketed(bracketed)
	if err != nil {
		t.Fatalf("%q: %v", bracketed, err)
	}
	es := r1.ElementString()
	r2, err := tp.Parse(es)
	if err != nil {
		t.Fatalf("%q → %q: %v", bracketed, es, err)
	}
	if got := r2.Bracketed(); got != bracketed {
		t.Fatalf("%q → %q → %q", bracketed, es, got)
	}
}
