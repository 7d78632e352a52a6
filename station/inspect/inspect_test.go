package inspect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/serials"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func testNow() time.Time { return time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC) }

var ti = Inspector{Now: testNow}

func codes(r Result) []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, e.Code)
	}
	return out
}

func TestInspect(t *testing.T) {
	for _, tc := range []struct {
		name, in, scheme string
		codes            []string
		check            func(Result) bool
	}{
		{"DataMatrix with <GS>", "]d201095060001343521727123110ABC<GS>21XYZ", "gs1", nil, func(r Result) bool {
			return r.GTIN == "09506000134352" && r.Expiry == "2027-12-31" && r.Lot == "ABC" && r.Serial == "XYZ" && r.Symbology == "]d2"
		}},
		{"escaped GS", `]d20109506000134352` + `10ABC\x1d21XYZ`, "gs1", nil, func(r Result) bool { return r.Lot == "ABC" && r.Serial == "XYZ" }},
		{"raw GS byte", "0109506000134352" + "10ABC\x1d21XYZ", "gs1", nil, func(r Result) bool { return r.Serial == "XYZ" }},
		{"expiry DD=00", "(01)09506000134352(17)271200", "gs1", nil, func(r Result) bool { return r.Expiry == "2027-12-31" }},
		{"best before and production", "(01)09506000134352(15)260101(11)250101(13)250102(16)260201", "gs1", nil, func(r Result) bool {
			return r.BestBefore == "2026-01-01" && r.ProductionDate == "2025-01-01" && r.PackagingDate == "2025-01-02" && r.SellBy == "2026-02-01"
		}},
		{"SSCC with content", "(00)106141411234567897(02)09506000134352(37)12", "gs1", nil, func(r Result) bool {
			return r.SSCC == "106141411234567897" && r.ContentGTIN == "09506000134352" && r.Count == "12"
		}},
		{"other keys", "(8004)0614141ABC", "gs1", nil, func(r Result) bool { return r.GIAI == "0614141ABC" }},
		{"GLN", "(414)0614141000036", "gs1", nil, func(r Result) bool { return r.GLN == "0614141000036" }},
		{"Digital Link", "https://id.example.com/01/9506000134352/21/S1?17=271231", "gs1-dl", nil, func(r Result) bool {
			return r.GTIN == "09506000134352" && r.Serial == "S1" && r.Expiry == "2027-12-31" && r.AIs["17"] == "271231"
		}},
		{"Digital Link bad qualifier order", "https://id.example.com/01/09506000134352/10/L/22/V", "gs1-dl", []string{"dl_bad_qualifier"}, nil},
		{"URL without a GS1 key", "https://example.com/about", "plain", nil, nil},
		{"EAN-13 without symbology", "9506000134352", "gs1", nil, func(r Result) bool { return r.GTIN == "09506000134352" && r.Symbology == "" }},
		{"UPC-A without symbology", "036000291452", "gs1", nil, func(r Result) bool { return r.GTIN == "00036000291452" }},
		{"EAN-8 without symbology", "96385074", "gs1", nil, func(r Result) bool { return r.GTIN == "00000096385074" }},
		{"13 digits, wrong check digit: plain", "9506000134353", "plain", nil, nil},
		{"EAN-13 with symbology, wrong check digit", "]E09506000134353", "gs1", []string{"bad_check_digit"}, nil},
		{"GTIN AI with bad check digit", "0109506000134353", "gs1", []string{"bad_check_digit"}, nil},
		{"serial without GTIN in brackets", "(21)ABC", "gs1", []string{"missing_required"}, nil},
		{"serial without GTIN with GS", "21ABC<GS>10X", "gs1", []string{"missing_required", "missing_required"}, nil},
		{"plain serial that looks like AI 10", "10ABC", "plain", nil, nil},
		{"plain serial", "SN-12345", "plain", nil, nil},
		{"plain digits", "123456", "plain", nil, nil},
		{"plain in QR", "]Q1hello world", "plain", nil, func(r Result) bool { return r.Symbology == "]Q1" }},
		{"control character", "AB\x07C", "plain", []string{"non_printable"}, nil},
		{"not UTF-8", "AB\xffC", "plain", []string{"not_utf8"}, nil},
		{"empty", "", "plain", []string{"empty"}, nil},
		{"HIBC concatenated", "+A99912345/$$52001510X3/16D20111212/S77DE1G45-", "hibc", nil, func(r Result) bool {
			return r.LIC == "A999" && r.PCN == "1234" && *r.UnitOfMeasure == 5 && r.Lot == "10X3" && r.Expiry == "2020-01-15" && r.ProductionDate == "2011-12-12" && r.Serial == "77DE1G45"
		}},
		{"HIBC secondary with quantity", "+$$8053251231LOT8GW", "hibc", nil, func(r Result) bool { return *r.Quantity == 5 && r.Link == "G" && r.Lot == "LOT8" }},
		{"HIBC bad check", "+A123BJC5D6E71H", "hibc", []string{"bad_check_char"}, nil},
		{"HIBC in Code 39 with AIM", "]A0+A123BJC5D6E71G", "hibc", nil, func(r Result) bool { return r.Symbology == "]A0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ti.Inspect(tc.in)
			if r.Scheme != tc.scheme || !reflect.DeepEqual(codes(r), tc.codes) || r.Valid != (len(tc.codes) == 0) {
				t.Fatalf("Inspect(%q) = scheme %q valid %v codes %v; want %q %v", tc.in, r.Scheme, r.Valid, codes(r), tc.scheme, tc.codes)
			}
			if tc.check != nil && !tc.check(r) {
				b, _ := json.Marshal(r)
				t.Fatalf("fields: %s", b)
			}
			if r.Input != tc.in || r.Errors == nil || r.AIs == nil {
				t.Fatal("input, errors or ais missing")
			}
		})
	}
}

// TestPositionsPointIntoTheLine: with "<GS>" written out, positions still
// point at the line as typed.
func TestPositionsPointIntoTheLine(t *testing.T) {
	line := "0109506000134352" + "10ABC<GS>21X Y"
	r := ti.Inspect(line)
	if len(r.Errors) != 1 || r.Errors[0].Code != "bad_charset" {
		t.Fatalf("errors %+v", r.Errors)
	}
	if p := r.Errors[0].Pos; line[p] != ' ' {
		t.Fatalf("pos %d points at %q", p, line[p])
	}
	r = ti.Inspect("9506000134350")
	if r.Scheme != "plain" {
		t.Fatalf("scheme %s", r.Scheme)
	}
	r = ti.Inspect("]E09506000134350")
	if len(r.Errors) != 1 || r.Errors[0].Pos != len("]E09506000134350")-1 {
		t.Fatalf("errors %+v", r.Errors)
	}
}

// TestGolden runs testdata/lines.txt through Run and compares with
// testdata/lines.golden; go test -update rewrites it.
func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "lines.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ti.Run(bytes.NewReader(in), nil, &out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("output differs from %s (go test -update to accept):\n%s", golden, out.String())
	}
	if n, m := strings.Count(string(in), "\n"), strings.Count(out.String(), "\n"); n != m {
		t.Fatalf("%d lines in, %d objects out", n, m)
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := ti.Run(strings.NewReader("ignored\n"), []string{"(01)09506000134352", "SN1"}, &out); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	var got []Result
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Scheme != "gs1" || got[1].Scheme != "plain" {
		t.Fatalf("got %+v", got)
	}

	out.Reset()
	if err := ti.Run(strings.NewReader("SN1\r\n\r\n(21)X\n"), nil, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"input":"SN1"`) || !strings.Contains(lines[1], `"empty"`) {
		t.Fatalf("stdin mode:\n%s", out.String())
	}
	if !strings.Contains(lines[2], `"valid":false`) {
		t.Fatalf("invalid code not reported: %s", lines[2])
	}

	if err := ti.Run(strings.NewReader("x\n"), nil, failWriter{}); err == nil {
		t.Fatal("write error not reported")
	}
	if err := ti.Run(errReader{}, nil, &out); err == nil {
		t.Fatal("read error not reported")
	}
	if err := ti.Run(nil, nil, &out); err == nil {
		t.Fatal("nil reader accepted")
	}
	if err := Run(nil, []string{"x"}, &out); err != nil {
		t.Fatal(err)
	}
	if r := Inspect("SN1"); r.Scheme != "plain" {
		t.Fatal(r.Scheme)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }

func FuzzInspect(f *testing.F) {
	in, _ := os.ReadFile(filepath.Join("testdata", "lines.txt"))
	for _, l := range strings.Split(string(in), "\n") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r := schemed.Inspect(line)
		if r.Valid != (len(r.Errors) == 0) || r.Scheme == "" || r.SerialCounter != nil && r.SerialScheme == "" {
			t.Fatalf("inconsistent %+v", r)
		}
		for _, e := range r.Errors {
			if e.Pos < 0 || e.Pos > len(line) {
				t.Fatalf("pos %d outside %q", e.Pos, line)
			}
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	})
}

// schemed knows two serial schemes: the cmd test's "unit" and one that
// puts the product's GTIN into the serial.
var schemed = func() Inspector {
	in := Inspector{Now: testNow}
	for _, s := range []struct{ name, tpl string }{
		{"unit", "SN{seq:6}{check:mod37-2}"},
		{"product", "{gtin}.{seq:4}"},
		{"lot", "{site}-{seq:4}-{lot}"},
	} {
		tp, err := serials.Parse(s.tpl)
		if err != nil {
			panic(err)
		}
		in.Schemes = append(in.Schemes, Scheme{Name: s.name, Template: tp})
	}
	return in
}()

func withMod43(s string) string {
	c, err := checkdigit.Mod43(s)
	if err != nil {
		panic(err)
	}
	return s + string(c)
}

func TestSerialSchemes(t *testing.T) {
	const gtin = "09506000134352"
	// SN0000427 is counter 42 of unit; 7 is its mod 37-2 check character.
	for _, tc := range []struct {
		name, in, scheme string
		counter          int64 // -1: none
		codes            []string
		pos              int // of the first error
	}{
		{"plain", "SN0000427", "unit", 42, nil, 0},
		{"plain with AIM", "]Q1SN0000427", "unit", 42, nil, 0},
		{"counter 0 is a counter", "SN000000R", "unit", 0, nil, 0},
		{"in GS1", "]d201" + gtin + "21SN0000427<GS>10L1", "unit", 42, nil, 0},
		{"in GS1 brackets", "(01)" + gtin + "(21)SN0000427", "unit", 42, nil, 0},
		{"in a Digital Link", "https://id.example.com/01/" + gtin + "/21/SN0000427", "unit", 42, nil, 0},
		{"in HIBC", withMod43("+A99912345/$$52001510X3/SSN0000427"), "unit", 42, nil, 0},
		{"GTIN in the serial is the code's", "(01)" + gtin + "(21)" + gtin + ".0042", "product", 42, nil, 0},
		{"another GTIN in the serial: no scheme", "(01)" + gtin + "(21)09506000134369.0042", "", -1, nil, 0},
		{"fits two ways", "A-1234-5678-B", "lot", -1, nil, 0},
		{"plain, wrong check", "SN0000428", "", -1, []string{CodeSerialCheck}, 8},
		{"plain with AIM, wrong check", "]Q1SN0000428", "", -1, []string{CodeSerialCheck}, 11},
		{"GS1, wrong check", "]d201" + gtin + "10L1<GS>21SN0000428", "", -1, []string{CodeSerialCheck}, len("]d201" + gtin + "10L1<GS>")},
		{"HIBC, wrong check", withMod43("+A99912345/$$52001510X3/SSN0000428"), "", -1, []string{CodeSerialCheck}, len("+A99912345/$$52001510X3/SSN000042")},
		{"other shape", "SN-12345", "", -1, nil, 0},
		{"counter too short", "SN000427", "", -1, nil, 0},
		{"GS1 serial of no scheme", "]d201" + gtin + "21XYZ", "", -1, nil, 0},
		{"GS1 without a serial", "]d201" + gtin + "10SN0000428", "", -1, nil, 0},
		{"not text", "SN00004\x0727", "", -1, []string{"non_printable"}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := schemed.Inspect(tc.in)
			b, _ := json.Marshal(r)
			if r.SerialScheme != tc.scheme || !reflect.DeepEqual(codes(r), tc.codes) || r.Valid != (len(tc.codes) == 0) {
				t.Fatalf("Inspect(%q) = %s\nwant scheme %q, errors %v", tc.in, b, tc.scheme, tc.codes)
			}
			switch {
			case tc.counter < 0 && r.SerialCounter != nil:
				t.Fatalf("counter %d, want none: %s", *r.SerialCounter, b)
			case tc.counter >= 0 && (r.SerialCounter == nil || *r.SerialCounter != uint64(tc.counter)):
				t.Fatalf("counter, want %d: %s", tc.counter, b)
			case tc.counter >= 0 && !strings.Contains(string(b), fmt.Sprintf(`"serial_counter":%d`, tc.counter)):
				t.Fatalf("serial_counter missing from the JSON: %s", b)
			}
			if len(tc.codes) > 0 && r.Errors[0].Pos != tc.pos {
				t.Fatalf("error at %d, want %d: %s", r.Errors[0].Pos, tc.pos, b)
			}
			if tc.scheme == "" && strings.Contains(string(b), "serial_scheme") {
				t.Fatalf("serial_scheme in the JSON: %s", b)
			}
		})
	}
	// The message says what is wrong and what is right.
	r := schemed.Inspect("(01)" + gtin + "(21)SN0000428")
	if len(r.Errors) != 1 || r.Errors[0].AI != "21" || !strings.Contains(r.Errors[0].Message, `"8" is wrong: {check:mod37-2} wants "7"`) || !strings.Contains(r.Errors[0].Message, "unit") {
		t.Fatalf("errors %+v", r.Errors)
	}
	// Without schemes a serial is only a serial.
	if r := ti.Inspect("SN0000428"); !r.Valid || r.SerialScheme != "" {
		t.Fatalf("no schemes: %+v", r)
	}
}
