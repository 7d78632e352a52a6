// Package checkdigit computes and verifies the check characters that
// identification schemes append to a number so that a misread or mistyped
// character is caught before it is trusted.
//
// Every algorithm comes as a pair: a function that computes the check
// character for the data (without it), and a Verify function that takes
// the whole string with its check character at the end. Verify never
// panics and answers false for anything outside the algorithm's alphabet.
//
// The algorithms:
//
//   - GS1 mod 10 (GS1 General Specifications 7.9.1): GTIN-8/12/13/14, SSCC,
//     GLN, GSIN, GRAI, GSRN and every other numeric GS1 key. Weights 3 and 1
//     alternate from the rightmost data digit.
//   - Luhn (ISO/IEC 7812-1 annex B): payment cards, IMEI and many vendor
//     serials. Every second digit, starting at the rightmost data digit, is
//     doubled.
//   - ISO/IEC 7064 MOD 11-2: numeric data, check character 0-9 or X (ISNI,
//     ORCID, Chinese resident IDs).
//   - ISO/IEC 7064 MOD 37-2: alphanumeric data 0-9 A-Z, check character
//     0-9 A-Z or '*'.
//   - Mod 43 (Code 39 check character, used by HIBC LIC and PAS over every
//     character of the data including the leading '+').
//   - The GS1 alphanumeric check character pair (GenSpecs 7.9.5), used by
//     the GMN, AI (8013), and the MUDI, AI (8014).
//
// The rule engine picks an algorithm by name through [ByName].
package checkdigit

import (
	"errors"
	"fmt"
)

// ErrInput is wrapped by every error of this package: the data is empty or
// has a character outside the algorithm's alphabet.
var ErrInput = errors.New("checkdigit: invalid input")

func badChar(s string, i int) error {
	return fmt.Errorf("%w: character %q at %d", ErrInput, s[i], i)
}

var errEmpty = fmt.Errorf("%w: no data", ErrInput)

// GS1Mod10 returns the GS1 mod 10 check digit for the digits in data
// (GenSpecs 7.9.1). Weights 3 and 1 alternate from the right, starting
// with 3 on the rightmost data digit, so the same function serves GTIN-8
// to GTIN-14, SSCC, GLN and GSIN.
func GS1Mod10(data string) (byte, error) {
	if data == "" {
		return 0, errEmpty
	}
	sum := 0
	w := 3
	for i := len(data) - 1; i >= 0; i-- {
		c := data[i]
		if c < '0' || c > '9' {
			return 0, badChar(data, i)
		}
		sum += int(c-'0') * w
		w = 4 - w // 3, 1, 3, 1 …
	}
	return byte('0' + (10-sum%10)%10), nil
}

// VerifyGS1Mod10 reports whether s ends in its correct GS1 mod 10 check
// digit.
func VerifyGS1Mod10(s string) bool {
	return verify(s, 1, GS1Mod10)
}

// Luhn returns the Luhn check digit for the digits in data (ISO/IEC 7812-1
// annex B). The digit that will sit next to the check digit is doubled
// first, so the check digit itself is never doubled.
func Luhn(data string) (byte, error) {
	if data == "" {
		return 0, errEmpty
	}
	sum := 0
	double := true
	for i := len(data) - 1; i >= 0; i-- {
		c := data[i]
		if c < '0' || c > '9' {
			return 0, badChar(data, i)
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10), nil
}

// VerifyLuhn reports whether s ends in its correct Luhn check digit.
func VerifyLuhn(s string) bool {
	return verify(s, 1, Luhn)
}

// Mod11Radix2 returns the ISO/IEC 7064 MOD 11-2 check character for the
// digits in data: '0' to '9', or 'X' for ten. It is the "pure system"
// recursive method of ISO/IEC 7064: P = (P + a)·2 mod 11 over the data,
// then the check character c makes P + c ≡ 1 (mod 11).
func Mod11Radix2(data string) (byte, error) {
	if data == "" {
		return 0, errEmpty
	}
	p := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c < '0' || c > '9' {
			return 0, badChar(data, i)
		}
		p = (p + int(c-'0')) * 2 % 11
	}
	v := (12 - p) % 11
	if v == 10 {
		return 'X', nil
	}
	return byte('0' + v), nil
}

// VerifyMod11Radix2 reports whether s ends in its correct ISO/IEC 7064
// MOD 11-2 check character.
func VerifyMod11Radix2(s string) bool {
	return verify(s, 1, Mod11Radix2)
}

// mod37Alphabet maps values 0..36 to ISO/IEC 7064 MOD 37-2 characters; the
// last one, '*', only ever appears as a check character.
const mod37Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"

// Mod37Radix2 returns the ISO/IEC 7064 MOD 37-2 check character for the
// alphanumeric data (0-9, A-Z): one of 0-9, A-Z or '*'.
func Mod37Radix2(data string) (byte, error) {
	if data == "" {
		return 0, errEmpty
	}
	p := 0
	for i := 0; i < len(data); i++ {
		v := alnumValue(data[i])
		if v < 0 {
			return 0, badChar(data, i)
		}
		p = (p + v) * 2 % 37
	}
	return mod37Alphabet[(38-p)%37], nil
}

// VerifyMod37Radix2 reports whether s ends in its correct ISO/IEC 7064
// MOD 37-2 check character.
func VerifyMod37Radix2(s string) bool {
	return verify(s, 1, Mod37Radix2)
}

func alnumValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

// Mod43Alphabet is the Code 39 character set in check-value order: a
// character's value for the mod 43 check is its index here.
const Mod43Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"

// Mod43 returns the mod 43 check character of data: the character whose
// Code 39 value is the sum of the data characters' values modulo 43. HIBC
// (ANSI/HIBC 2.6) computes it over every character, '+' flag
// included.
func Mod43(data string) (byte, error) {
	if data == "" {
		return 0, errEmpty
	}
	sum := 0
	for i := 0; i < len(data); i++ {
		v := Mod43Value(data[i])
		if v < 0 {
			return 0, badChar(data, i)
		}
		sum += v
	}
	return Mod43Alphabet[sum%43], nil
}

// Mod43Value returns the Code 39 value of c, or -1 if c is not a Code 39
// character.
func Mod43Value(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	switch c {
	case '-':
		return 36
	case '.':
		return 37
	case ' ':
		return 38
	case '$':
		return 39
	case '/':
		return 40
	case '+':
		return 41
	case '%':
		return 42
	}
	return -1
}

// VerifyMod43 reports whether s ends in its correct mod 43 check
// character.
func VerifyMod43(s string) bool {
	return verify(s, 1, Mod43)
}

// cset82 is GS1 AI encodable character set 82 (GenSpecs 7.11) in
// the order that gives each character its value for the check pair.
const cset82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// cset32 is GS1 AI encodable character set 32 (GenSpecs 7.9.5, 7.11):
// the check pair alphabet, without the easily confused 0, 1, I and O.
const cset32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// checkPairPrimes are the weights of the check pair, applied from the
// rightmost data character leftwards. 97 of them cover the longest AI
// value (99 characters, two of them the pair).
var checkPairPrimes = [...]int{
	2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61,
	67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137,
	139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211,
	223, 227, 229, 233, 239, 241, 251, 257, 263, 269, 271, 277, 281, 283,
	293, 307, 311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379,
	383, 389, 397, 401, 409, 419, 421, 431, 433, 439, 443, 449, 457, 461,
	463, 467, 479, 487, 491, 499, 503, 509,
}

// GS1CheckPair returns the two check characters that GenSpecs 7.9.5
// appends to alphanumeric keys such as the GMN: the sum of the CSET 82
// values of data weighted by ascending primes from the right, modulo 1021,
// split into two 5-bit CSET 32 characters. data may be empty (the pair of
// nothing is "22"); it may hold at most 97 characters.
func GS1CheckPair(data string) (string, error) {
	if len(data) > len(checkPairPrimes) {
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrInput, len(data), len(checkPairPrimes))
	}
	sum := 0
	for i := 0; i < len(data); i++ {
		v := cset82Value(data[i])
		if v < 0 {
			return "", badChar(data, i)
		}
		sum += v * checkPairPrimes[len(data)-1-i]
	}
	sum %= 1021
	return string([]byte{cset32[sum>>5], cset32[sum&31]}), nil
}

// VerifyGS1CheckPair reports whether s ends in its correct GS1 check
// character pair.
func VerifyGS1CheckPair(s string) bool {
	if len(s) < 2 {
		return false
	}
	data := s[:len(s)-2]
	if len(data) > len(checkPairPrimes) {
		return false
	}
	sum := 0
	for i := 0; i < len(data); i++ {
		v := cset82Value(data[i])
		if v < 0 {
			return false
		}
		sum += v * checkPairPrimes[len(data)-1-i]
	}
	sum %= 1021
	return s[len(s)-2] == cset32[sum>>5] && s[len(s)-1] == cset32[sum&31]
}

// cset82Value returns c's value in CSET 82 (its index), or -1.
func cset82Value(c byte) int {
	// A linear scan over 82 bytes is cheaper than it looks and keeps the
	// table in one readable place.
	for i := 0; i < len(cset82); i++ {
		if cset82[i] == c {
			return i
		}
	}
	return -1
}

// verify splits off the last n characters and compares them with what
// compute makes of the rest.
func verify(s string, n int, compute func(string) (byte, error)) bool {
	if len(s) <= n {
		return false
	}
	c, err := compute(s[:len(s)-n])
	return err == nil && c == s[len(s)-1]
}

// Algorithm is a check character algorithm chosen by name, as a rule set
// names it.
type Algorithm interface {
	// Name is the algorithm's name as ByName accepts it.
	Name() string
	// Compute returns the check character(s) for data.
	Compute(data string) (string, error)
	// Verify reports whether s ends in its correct check character(s).
	Verify(s string) bool
}

type single struct {
	name    string
	compute func(string) (byte, error)
}

func (a single) Name() string { return a.name }

func (a single) Compute(data string) (string, error) {
	c, err := a.compute(data)
	if err != nil {
		return "", err
	}
	return string(c), nil
}

func (a single) Verify(s string) bool { return verify(s, 1, a.compute) }

type pair struct{}

func (pair) Name() string                        { return "gs1-pair" }
func (pair) Compute(data string) (string, error) { return GS1CheckPair(data) }
func (pair) Verify(s string) bool                { return VerifyGS1CheckPair(s) }

// Names lists the names ByName accepts.
func Names() []string {
	return []string{"gs1", "luhn", "mod11-2", "mod37-2", "mod43", "gs1-pair"}
}

// ByName returns the algorithm called name: "gs1" (GS1 mod 10), "luhn",
// "mod11-2" and "mod37-2" (ISO/IEC 7064), "mod43" (HIBC / Code 39) or
// "gs1-pair" (the GS1 alphanumeric check character pair).
func ByName(name string) (Algorithm, bool) {
	switch name {
	case "gs1":
		return single{name, GS1Mod10}, true
	case "luhn":
		return single{name, Luhn}, true
	case "mod11-2":
		return single{name, Mod11Radix2}, true
	case "mod37-2":
		return single{name, Mod37Radix2}, true
	case "mod43":
		return single{name, Mod43}, true
	case "gs1-pair":
		return pair{}, true
	}
	return nil, false
}
