package hibc

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
)

// withCheck appends the mod 43 check character (verified against published
// examples in package checkdigit).
func withCheck(s string) string {
	c, err := checkdigit.Mod43(s)
	if err != nil {
		panic(err)
	}
	return s + string(c)
}

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

type want struct {
	lic, pcn  string
	uom       int
	qty       int // -1: none
	expiry    time.Time
	format    string
	lot       string
	serial    string
	made      time.Time
	link      byte
	concat    bool
	secondary bool
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want want
	}{
		{"published concatenated example", "+A99912345/$$52001510X3/16D20111212/S77DE1G45-",
			want{lic: "A999", pcn: "1234", uom: 5, qty: -1, expiry: day(2020, 1, 15), format: "YYJJJ", lot: "10X3", serial: "77DE1G45", made: day(2011, 12, 12), concat: true, secondary: true}},
		{"primary", "+A123BJC5D6E71G", want{lic: "A123", pcn: "BJC5D6E7", uom: 1, qty: -1}},
		{"primary 18-character PCN", withCheck("+H123ABCDEFGHIJKLMNOPQR0"), want{lic: "H123", pcn: "ABCDEFGHIJKLMNOPQR", uom: 0, qty: -1}},
		{"primary in Code 39 asterisks", "*+A123BJC5D6E71G*", want{lic: "A123", pcn: "BJC5D6E7", uom: 1, qty: -1}},
		{"primary with AIM prefix", "]A0+A123BJC5D6E71G", want{lic: "A123", pcn: "BJC5D6E7", uom: 1, qty: -1}},
		{"concatenated IDAutomation example", withCheck("+A123BJC5D6E71/$$52001510X3"),
			want{lic: "A123", pcn: "BJC5D6E7", uom: 1, qty: -1, expiry: day(2020, 1, 15), format: "YYJJJ", lot: "10X3", concat: true, secondary: true}},
		{"secondary MMYY", withCheck("+$$0927LOT1G"), want{qty: -1, expiry: day(2027, 9, 30), format: "MMYY", lot: "LOT1", link: 'G', secondary: true}},
		{"secondary MMYY December", withCheck("+$$1225L9G"), want{qty: -1, expiry: day(2025, 12, 31), format: "MMYY", lot: "L9", link: 'G', secondary: true}},
		{"secondary MMDDYY", withCheck("+$$2123125LOT2G"), want{qty: -1, expiry: day(2025, 12, 31), format: "MMDDYY", lot: "LOT2", link: 'G', secondary: true}},
		{"secondary YYMMDD", withCheck("+$$3251231LOT3G"), want{qty: -1, expiry: day(2025, 12, 31), format: "YYMMDD", lot: "LOT3", link: 'G', secondary: true}},
		{"secondary YYMMDDHH", withCheck("+$$425123122LOT4G"), want{qty: -1, expiry: time.Date(2025, 12, 31, 22, 0, 0, 0, time.UTC), format: "YYMMDDHH", lot: "LOT4", link: 'G', secondary: true}},
		{"secondary YYJJJ", withCheck("+$$525365LOT5G"), want{qty: -1, expiry: day(2025, 12, 31), format: "YYJJJ", lot: "LOT5", link: 'G', secondary: true}},
		{"secondary YYJJJ leap day 366", withCheck("+$$524366L6G"), want{qty: -1, expiry: day(2024, 12, 31), format: "YYJJJ", lot: "L6", link: 'G', secondary: true}},
		{"secondary YYJJJHH", withCheck("+$$62536523LOT6G"), want{qty: -1, expiry: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), format: "YYJJJHH", lot: "LOT6", link: 'G', secondary: true}},
		{"secondary no expiry", withCheck("+$$7LOT7G"), want{qty: -1, lot: "LOT7", link: 'G', secondary: true}},
		{"quantity 2 digits and YYMMDD", withCheck("+$$8053251231LOT8G"), want{qty: 5, expiry: day(2025, 12, 31), format: "YYMMDD", lot: "LOT8", link: 'G', secondary: true}},
		{"quantity 5 digits and MMYY", withCheck("+$$9001000927LOT9G"), want{qty: 100, expiry: day(2027, 9, 30), format: "MMYY", lot: "LOT9", link: 'G', secondary: true}},
		{"quantity without expiry", withCheck("+$$8127L1G"), want{qty: 12, lot: "L1", link: 'G', secondary: true}},
		{"serial with expiry", withCheck("+$$+3251231SER1G"), want{qty: -1, expiry: day(2025, 12, 31), format: "YYMMDD", serial: "SER1", link: 'G', secondary: true}},
		{"serial with quantity", withCheck("+$$+9000017SER2G"), want{qty: 1, serial: "SER2", link: 'G', secondary: true}},
		{"lot only", withCheck("+$LOT123G"), want{qty: -1, lot: "LOT123", link: 'G', secondary: true}},
		{"serial only", withCheck("+$+SER123G"), want{qty: -1, serial: "SER123", link: 'G', secondary: true}},
		{"original Julian format", withCheck("+25365LOT1G"), want{qty: -1, expiry: day(2025, 12, 31), format: "YYJJJ", lot: "LOT1", link: 'G', secondary: true}},
		{"supplemental expiry", withCheck("+A123BJC5D6E71/$LOT/14D20271231"), want{lic: "A123", pcn: "BJC5D6E7", uom: 1, qty: -1, expiry: day(2027, 12, 31), format: "YYYYMMDD", lot: "LOT", concat: true, secondary: true}},
		{"empty lot after flag 7", withCheck("+$$7G"), want{qty: -1, link: 'G', secondary: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			w := tc.want
			if w.lic != "" {
				if r.Primary == nil || r.Primary.LIC != w.lic || r.Primary.PCN != w.pcn || r.Primary.UoM != w.uom {
					t.Fatalf("primary = %+v", r.Primary)
				}
			} else if r.Primary != nil {
				t.Fatalf("unexpected primary %+v", r.Primary)
			}
			if r.Concatenated != w.concat || r.Link != w.link {
				t.Fatalf("concatenated %v link %q", r.Concatenated, r.Link)
			}
			if !w.secondary {
				if r.Secondary != nil {
					t.Fatalf("unexpected secondary %+v", r.Secondary)
				}
				return
			}
			s := r.Secondary
			if s == nil {
				t.Fatal("no secondary")
			}
			qty := -1
			if s.HasQuantity {
				qty = s.Quantity
			}
			if qty != w.qty || !s.Expiry.Equal(w.expiry) || s.ExpiryFormat != w.format || s.Lot != w.lot || s.Serial != w.serial || !s.Manufactured.Equal(w.made) {
				t.Fatalf("secondary = %+v", s)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		codes []string
	}{
		{"empty", "", []string{CodeEmpty}},
		{"only AIM", "]A0", []string{CodeEmpty}},
		{"no flag", "A123BJC5D6E71G", []string{CodeNotHIBC}},
		{"HIBC PAS", "+/ABC", []string{CodeNotHIBC}},
		{"too short", "+A", []string{CodeTooShort}},
		{"bad check character", "+A123BJC5D6E71H", []string{CodeBadCheckChar}},
		{"published example with a wrong check", "+A99912345/$$52001510X3/16D20111212/S77DE1G45+", []string{CodeBadCheckChar}},
		{"lower case", "+a123bjc5d6e71G", []string{CodeBadCharset}},
		{"outside Code 39", "+A123_BJC1G", []string{CodeBadCharset}},
		{"primary too short", withCheck("+A121"), []string{CodeTooShort}},
		{"unit of measure not a digit", withCheck("+A123BJC5D6E7X"), []string{CodeBadUoM}},
		{"LIC with a symbol", withCheck("+A1-3BJC1"), []string{CodeBadLIC}},
		{"PCN with a symbol", withCheck("+A123BJ.C1"), []string{CodeBadPCN}},
		{"PCN 19 characters", withCheck("+H123ABCDEFGHIJKLMNOPQRS0"), []string{CodeBadPCN}},
		{"starts with a symbol", withCheck("+-ABC"), []string{CodeBadLIC}},
		{"secondary without link", withCheck("+$"), []string{CodeTooShort}},
		{"month 13", withCheck("+$$1325LOTG"), []string{CodeBadDate}},
		{"31 April", withCheck("+$$2043125LOTG"), []string{CodeBadDate}},
		{"29 February 2025", withCheck("+$$3250229LOTG"), []string{CodeBadDate}},
		{"hour 24", withCheck("+$$425123124LOTG"), []string{CodeBadDate}},
		{"Julian day 366 in a common year", withCheck("+$$525366LOTG"), []string{CodeBadDate}},
		{"Julian day 000", withCheck("+25000LOTG"), []string{CodeBadDate}},
		{"truncated date", withCheck("+$$3251G"), []string{CodeBadDate}},
		{"letters in date", withCheck("+$$325AB31LOTG"), []string{CodeBadDate}},
		{"unknown flag", withCheck("+$$ALOTG"), []string{CodeBadFlag}},
		{"nothing after $$", withCheck("+$$G"), []string{CodeBadFlag}},
		{"quantity too short", withCheck("+$$81G"), []string{CodeBadQuantity}},
		{"quantity letters", withCheck("+$$9AB0007LOTG"), []string{CodeBadQuantity}},
		{"quantity without date flag", withCheck("+$$805G"), []string{CodeBadFlag}},
		{"lot with a symbol", withCheck("+$LO.TG"), []string{CodeBadLot}},
		{"lot 19 characters", withCheck("+$ABCDEFGHIJKLMNOPQRSG"), []string{CodeBadLot}},
		{"serial with a symbol", withCheck("+$+S-1G"), []string{CodeBadSerial}},
		{"bad manufacturing date", withCheck("+A123BJC5D6E71/$L/16D20111312"), []string{CodeBadDate}},
		{"short supplemental date", withCheck("+A123BJC5D6E71/$L/14D2011"), []string{CodeBadDate}},
		{"empty supplemental serial", withCheck("+A123BJC5D6E71/$L/S"), []string{CodeBadSerial}},
		{"empty supplemental field", withCheck("+A123BJC5D6E71/$L//S1"), []string{CodeBadSupplement}},
		{"two problems", "+A123BJ.C1/$$1325LOT-", []string{CodeBadCheckChar, CodeBadPCN, CodeBadDate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.in)
			if r == nil {
				t.Fatal("nil Result")
			}
			var got []string
			var es Errors
			if errors.As(err, &es) {
				for _, e := range es {
					got = append(got, e.Code)
					if e.Pos < 0 || e.Pos > len(tc.in) {
						t.Fatalf("position %d outside the input", e.Pos)
					}
				}
			}
			if !reflect.DeepEqual(got, tc.codes) {
				t.Fatalf("Parse(%q) codes = %v, want %v (%v)", tc.in, got, tc.codes, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Error() == "" || err.Error() == "" {
				t.Fatal("no *Error")
			}
		})
	}
}

func TestLinksTo(t *testing.T) {
	prim, err := Parse("+A123BJC5D6E71G")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := Parse(withCheck("+$$3251231LOT3G"))
	if err != nil {
		t.Fatal(err)
	}
	if !sec.LinksTo(prim) {
		t.Fatal("secondary does not link to its primary")
	}
	other, _ := Parse(withCheck("+$$3251231LOT3H"))
	if other.LinksTo(prim) || prim.LinksTo(sec) || sec.LinksTo(nil) {
		t.Fatal("wrong link accepted")
	}
}

func TestLooks(t *testing.T) {
	for in, want := range map[string]bool{
		"+A123BJC5D6E71G": true, "+$$3251231LOT3GX": true, "+25365LOT1GX": true, "]A0+A123": true,
		"*+A123*": true, "+": false, "+a": false, "01095": false, "": false, "+/ABC": false,
	} {
		if Looks(in) != want {
			t.Errorf("Looks(%q) != %v", in, want)
		}
	}
}

func FuzzHIBC(f *testing.F) {
	for _, s := range []string{
		"+A99912345/$$52001510X3/16D20111212/S77DE1G45-", "+A123BJC5D6E71G", "+$$8053251231LOT8GX",
		"+$$+9000107SER2GX", "+25365LOT1GX", "*+A123*", "]d1+$L/14D20271231/S1GX", "+$$9", "+/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if r == nil {
			t.Fatal("nil Result")
		}
		if err == nil {
			if r.Primary == nil && r.Secondary == nil {
				t.Fatalf("valid %q with neither primary nor secondary", s)
			}
			if !checkdigit.VerifyMod43(s[len(r.Symbology):]) && s[len(r.Symbology)] != '*' {
				t.Fatalf("valid %q fails its mod 43 check", s)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not Errors: %#v", err)
		}
		for _, e := range es {
			if e.Code == "" || e.Pos < 0 || e.Pos > len(s) {
				t.Fatalf("bad error %#v for %q", e, s)
			}
		}
	})
}

func BenchmarkParseConcatenated(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("+A99912345/$$52001510X3/16D20111212/S77DE1G45-"); err != nil {
			b.Fatal(err)
		}
	}
}
