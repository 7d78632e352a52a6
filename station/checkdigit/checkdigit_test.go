package checkdigit

import (
	"errors"
	"strings"
	"testing"
)

// The vectors are published examples: GS1 General Specifications (GTIN
// 09506000134352, SSCC 106141411234567897, GMN 1987654Ad4X4bL5ttr2310c2K),
// the UPC-A and EAN-8 examples of the symbology specifications, the Luhn
// and IMEI examples of ISO/IEC 7812 and 3GPP TS 23.003, ISO/IEC 7064's own
// examples (0794 → 07940, G123489654321 → …Y), ORCID identifiers
// (0000-0002-1825-0097, 0000-0002-1694-233X), and HIBC's concatenated
// example. Each is also re-derived by a second, independent formulation of
// the algorithm (weighted sums instead of the recursive form) so a shared
// misconception cannot make both agree.

func TestGS1Mod10(t *testing.T) {
	for _, tc := range []struct{ name, full string }{
		{"GTIN-14 GenSpecs example", "09506000134352"},
		{"GTIN-13", "9506000134352"},
		{"GTIN-12 UPC-A", "036000291452"},
		{"GTIN-8 EAN-8", "96385074"},
		{"SSCC GenSpecs example", "106141411234567897"},
		{"GLN", "0614141000036"},
		{"GTIN-14 indicator 1", "10614141234568"},
		{"ISBN-13", "9780306406157"},
		{"GSIN", "06141411234567890"},
		{"all zeros", "00000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-1], tc.full[len(tc.full)-1]
			got, err := GS1Mod10(data)
			if err != nil || got != want {
				t.Fatalf("GS1Mod10(%q) = %q, %v; want %q", data, got, err, want)
			}
			if alt := gs1WeightedSum(tc.full); alt%10 != 0 {
				t.Fatalf("independent weighted sum of %q is %d, not a multiple of 10", tc.full, alt)
			}
			if !VerifyGS1Mod10(tc.full) {
				t.Fatalf("VerifyGS1Mod10(%q) = false", tc.full)
			}
			bad := tc.full[:len(tc.full)-1] + string('0'+(want-'0'+1)%10)
			if VerifyGS1Mod10(bad) {
				t.Fatalf("VerifyGS1Mod10(%q) = true", bad)
			}
		})
	}
}

// gs1WeightedSum is GenSpecs 7.9.1 written left to right over the whole
// number including the check digit: positions alternate 3,1 ending in 1.
func gs1WeightedSum(full string) int {
	sum := 0
	for i := 0; i < len(full); i++ {
		w := 1
		if (len(full)-1-i)%2 == 1 {
			w = 3
		}
		sum += int(full[i]-'0') * w
	}
	return sum
}

func TestGS1Mod10SingleTransposition(t *testing.T) {
	// The reason for mod 10 with weights 3/1: every single-digit error is
	// caught. Check that exhaustively on one GTIN.
	full := "09506000134352"
	for i := 0; i < len(full); i++ {
		for d := byte('0'); d <= '9'; d++ {
			if d == full[i] {
				continue
			}
			bad := full[:i] + string(d) + full[i+1:]
			if VerifyGS1Mod10(bad) {
				t.Fatalf("single-digit error %q not caught", bad)
			}
		}
	}
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct{ name, full string }{
		{"ISO/IEC 7812 example", "79927398713"},
		{"Visa test card", "4111111111111111"},
		{"Amex test card", "378282246310005"},
		{"IMEI 3GPP example", "490154203237518"},
		{"single", "00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-1], tc.full[len(tc.full)-1]
			got, err := Luhn(data)
			if err != nil || got != want {
				t.Fatalf("Luhn(%q) = %q, %v; want %q", data, got, err, want)
			}
			if alt := luhnSum(tc.full); alt%10 != 0 {
				t.Fatalf("independent Luhn sum of %q is %d", tc.full, alt)
			}
			if !VerifyLuhn(tc.full) {
				t.Fatalf("VerifyLuhn(%q) = false", tc.full)
			}
		})
	}
	if VerifyLuhn("79927398710") {
		t.Fatal("VerifyLuhn accepted a wrong check digit")
	}
}

// luhnSum doubles every second digit counting from the check digit (which
// is not doubled), using the digit-sum table rather than "minus 9".
func luhnSum(full string) int {
	digitSum := [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}
	sum := 0
	for i := len(full) - 1; i >= 0; i-- {
		d := int(full[i] - '0')
		if (len(full)-1-i)%2 == 1 {
			d = digitSum[d]
		}
		sum += d
	}
	return sum
}

func TestMod11Radix2(t *testing.T) {
	for _, tc := range []struct{ name, full string }{
		{"ISO/IEC 7064 example", "07940"},
		{"ORCID 0000-0002-1825-0097", "0000000218250097"},
		{"ORCID with X", "000000021694233X"},
		{"ORCID 0000-0001-5109-3700", "0000000151093700"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-1], tc.full[len(tc.full)-1]
			got, err := Mod11Radix2(data)
			if err != nil || got != want {
				t.Fatalf("Mod11Radix2(%q) = %q, %v; want %q", data, got, err, want)
			}
			if r := pureSystemSum(tc.full, 11, func(c byte) int {
				if c == 'X' {
					return 10
				}
				return int(c - '0')
			}); r != 1 {
				t.Fatalf("Σ a·2^(i-1) mod 11 over %q = %d, want 1", tc.full, r)
			}
			if !VerifyMod11Radix2(tc.full) {
				t.Fatalf("VerifyMod11Radix2(%q) = false", tc.full)
			}
		})
	}
	if VerifyMod11Radix2("07941") {
		t.Fatal("accepted a wrong check character")
	}
}

// pureSystemSum is ISO/IEC 7064's definition of a pure system with radix 2
// as a weighted sum: positions counted from the right starting at 1 (the
// check character) carry weight 2^(i-1); a valid string sums to 1 mod m.
func pureSystemSum(full string, m int, value func(byte) int) int {
	sum, w := 0, 1
	for i := len(full) - 1; i >= 0; i-- {
		sum = (sum + value(full[i])*w) % m
		w = w * 2 % m
	}
	return sum
}

func TestMod37Radix2(t *testing.T) {
	value := func(c byte) int { return strings.IndexByte(mod37Alphabet, c) }
	for _, tc := range []struct{ name, full string }{
		{"ISO/IEC 7064 example", "G123489654321Y"},
		{"short", "A999B"},
		{"letters", "ISO7064P"},
		{"zero", "01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-1], tc.full[len(tc.full)-1]
			got, err := Mod37Radix2(data)
			if err != nil || got != want {
				t.Fatalf("Mod37Radix2(%q) = %q, %v; want %q", data, got, err, want)
			}
			if r := pureSystemSum(tc.full, 37, value); r != 1 {
				t.Fatalf("weighted sum of %q mod 37 = %d, want 1", tc.full, r)
			}
			if !VerifyMod37Radix2(tc.full) {
				t.Fatalf("VerifyMod37Radix2(%q) = false", tc.full)
			}
		})
	}
	// Every one of the 37 check characters, '*' included, must be reachable
	// and verify.
	seen := map[byte]bool{}
	for n := 0; n < 2000 && len(seen) < 37; n++ {
		data := strings.ToUpper(strconvBase36(n))
		c, err := Mod37Radix2(data)
		if err != nil {
			t.Fatal(err)
		}
		seen[c] = true
		if !VerifyMod37Radix2(data + string(c)) {
			t.Fatalf("round trip failed for %q", data)
		}
	}
	if len(seen) != 37 {
		t.Fatalf("only %d distinct check characters seen", len(seen))
	}
}

func strconvBase36(n int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 36 {
		b = append([]byte{digits[n%36]}, b...)
	}
	return string(b)
}

func TestMod43(t *testing.T) {
	for _, tc := range []struct{ name, full string }{
		{"Code 39 example", "CODE39W"},
		{"HIBC concatenated example", "+A99912345/$$52001510X3/16D20111212/S77DE1G45-"},
		{"HIBC primary", "+A123BJC5D6E71G"},
		{"HIBC primary short", "+A999123457"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-1], tc.full[len(tc.full)-1]
			got, err := Mod43(data)
			if err != nil || got != want {
				t.Fatalf("Mod43(%q) = %q, %v; want %q", data, got, err, want)
			}
			sum := 0
			for i := 0; i < len(data); i++ {
				sum += strings.IndexByte(Mod43Alphabet, data[i])
			}
			if Mod43Alphabet[sum%43] != want {
				t.Fatalf("independent sum disagrees for %q", data)
			}
			if !VerifyMod43(tc.full) {
				t.Fatalf("VerifyMod43(%q) = false", tc.full)
			}
		})
	}
}

func TestGS1CheckPair(t *testing.T) {
	for _, tc := range []struct{ name, full string }{
		{"GenSpecs 7.9.5 GMN example", "1987654Ad4X4bL5ttr2310c2K"},
		{"digits", "12345678901234567890123NT"},
		{"symbols", "12345_!\"%&'()*+,-./LC"},
		{"nothing", "22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := tc.full[:len(tc.full)-2], tc.full[len(tc.full)-2:]
			got, err := GS1CheckPair(data)
			if err != nil || got != want {
				t.Fatalf("GS1CheckPair(%q) = %q, %v; want %q", data, got, err, want)
			}
			if !VerifyGS1CheckPair(tc.full) {
				t.Fatalf("VerifyGS1CheckPair(%q) = false", tc.full)
			}
		})
	}
	if VerifyGS1CheckPair("1987654Ad4X4bL5ttr2310cXK") {
		t.Fatal("accepted a wrong pair")
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(string) (byte, error)
		in   string
	}{
		{"gs1 empty", GS1Mod10, ""},
		{"gs1 letter", GS1Mod10, "12A4"},
		{"luhn space", Luhn, "12 4"},
		{"mod11 X in data", Mod11Radix2, "12X"},
		{"mod37 lower", Mod37Radix2, "abc"},
		{"mod37 star in data", Mod37Radix2, "A*"},
		{"mod43 lower", Mod43, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.f(tc.in); !errors.Is(err, ErrInput) {
				t.Fatalf("err = %v, want ErrInput", err)
			}
		})
	}
	for _, s := range []string{"", "1", "\xff\xfe", "A"} {
		if VerifyGS1Mod10(s) || VerifyLuhn(s) || VerifyMod11Radix2(s) || VerifyMod37Radix2(s) || VerifyMod43(s) || VerifyGS1CheckPair(s) {
			t.Fatalf("something verified %q", s)
		}
	}
	if _, err := GS1CheckPair(strings.Repeat("1", 98)); !errors.Is(err, ErrInput) {
		t.Fatal("98 characters accepted for the check pair")
	}
}

func TestByName(t *testing.T) {
	want := map[string]string{
		"gs1":      "09506000134352",
		"luhn":     "79927398713",
		"mod11-2":  "07940",
		"mod37-2":  "G123489654321Y",
		"mod43":    "CODE39W",
		"gs1-pair": "1987654Ad4X4bL5ttr2310c2K",
	}
	for _, name := range Names() {
		a, ok := ByName(name)
		if !ok || a.Name() != name {
			t.Fatalf("ByName(%q) = %v, %v", name, a, ok)
		}
		full := want[name]
		n := 1
		if name == "gs1-pair" {
			n = 2
		}
		c, err := a.Compute(full[:len(full)-n])
		if err != nil || c != full[len(full)-n:] {
			t.Fatalf("%s.Compute = %q, %v", name, c, err)
		}
		if !a.Verify(full) {
			t.Fatalf("%s.Verify(%q) = false", name, full)
		}
	}
	if _, ok := ByName("crc32"); ok {
		t.Fatal("unknown algorithm found")
	}
}

func FuzzVerify(f *testing.F) {
	for _, s := range []string{"09506000134352", "CODE39W", "0794", "1987654Ad4X4bL5ttr2310c2K", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range Names() {
			a, _ := ByName(name)
			_ = a.Verify(s)
			if c, err := a.Compute(s); err == nil && !a.Verify(s+c) {
				t.Fatalf("%s: Compute then Verify failed for %q", name, s)
			}
		}
	})
}
