package gs1

import (
	"strconv"
	"strings"
)

// Error codes. They are part of the wire contract (scan reasons, `scangw
// inspect` output): add new ones, never rename.
const (
	// CodeEmpty: there is no data after the symbology identifier.
	CodeEmpty = "empty"
	// CodeNotGS1: the symbology identifier says the symbol does not carry
	// GS1 data (e.g. "]C0", "]d1" with no URI).
	CodeNotGS1 = "not_gs1"
	// CodeSyntax: the bracketed form is malformed (no closing bracket, an
	// AI that is not 2 to 4 digits).
	CodeSyntax = "bad_syntax"
	// CodeUnknownAI: the digits where an AI must start name no AI in the
	// Barcode Syntax Dictionary.
	CodeUnknownAI = "unknown_ai"
	// CodeTooShort: a value, or one of its components, is shorter than its
	// format allows; also an AI with no value at all.
	CodeTooShort = "too_short"
	// CodeTooLong: a value is longer than its format allows (for a
	// variable-length AI in an element string: the FNC1 is missing).
	CodeTooLong = "too_long"
	// CodeBadCharset: a character outside the component's character set
	// (N digits, X CSET 82, Y CSET 39, Z CSET 64).
	CodeBadCharset = "bad_charset"
	// CodeBadCheckDigit: a GS1 key's mod 10 check digit is wrong.
	CodeBadCheckDigit = "bad_check_digit"
	// CodeBadCheckPair: an alphanumeric key's check character pair is wrong.
	CodeBadCheckPair = "bad_check_pair"
	// CodeBadDate: not a calendar date (month 13, 31 April, 29 February in
	// a common year, day 00 where the AI does not allow it).
	CodeBadDate = "bad_date"
	// CodeBadTime: not a time of day.
	CodeBadTime = "bad_time"
	// CodeBadGCP: a key does not start with a GS1 Company Prefix.
	CodeBadGCP = "bad_gcp"
	// CodeBadCountry: not an ISO 3166-1 country code.
	CodeBadCountry = "bad_country"
	// CodeBadCurrency: not an ISO 4217 currency code.
	CodeBadCurrency = "bad_currency"
	// CodeBadValue: any other content rule of the dictionary failed; the
	// message names the rule.
	CodeBadValue = "bad_value"
	// CodeDuplicateAI: the same AI twice with different values (GenSpecs
	// 4.14.1).
	CodeDuplicateAI = "duplicate_ai"
	// CodeMissingRequired: an AI lacks the AI it must be paired with
	// (dictionary "req", GenSpecs 4.14.2).
	CodeMissingRequired = "missing_required"
	// CodeExcludedPair: two AIs that must not appear together (dictionary
	// "ex", GenSpecs 4.14.1).
	CodeExcludedPair = "excluded_pair"
	// CodeBadURI: the GS1 Digital Link URI is not a well-formed http(s) URI.
	CodeBadURI = "bad_uri"
	// CodeDLNoKey: no GS1 primary key was found in the URI path.
	CodeDLNoKey = "dl_no_key"
	// CodeDLBadQualifier: a path AI is not a qualifier of the primary key,
	// or the qualifiers are out of order.
	CodeDLBadQualifier = "dl_bad_qualifier"
	// CodeDLBadAttribute: a query-string AI is not permitted as a Digital
	// Link data attribute (keys and qualifiers belong in the path).
	CodeDLBadAttribute = "dl_bad_attribute"
)

// Error is one problem found in GS1 data. Pos is the byte offset in the
// parsed input (symbology identifier included) where the problem starts;
// AI is the Application Identifier it concerns, "" when none does.
type Error struct {
	Code string
	AI   string
	Pos  int
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gs1: ")
	if e.AI != "" {
		b.WriteString("(" + e.AI + ") ")
	}
	b.WriteString(e.Msg)
	b.WriteString(" at ")
	b.WriteString(strconv.Itoa(e.Pos))
	b.WriteString(" [")
	b.WriteString(e.Code)
	b.WriteString("]")
	return b.String()
}

// Errors is every problem found in one input, in the order found. Parsing
// reports them all, not only the first, so an operator sees the whole
// picture; errors.As finds the first *Error in it.
type Errors []*Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "gs1: no error"
	case 1:
		return es[0].Error()
	}
	return es[0].Error() + " (and " + strconv.Itoa(len(es)-1) + " more)"
}

// Unwrap lets errors.As and errors.Is see each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Has reports whether one of the errors has the given code.
func (es Errors) Has(code string) bool {
	for _, e := range es {
		if e.Code == code {
			return true
		}
	}
	return false
}
