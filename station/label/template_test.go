package label

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scangw/scangw/station/gs1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var example = Values{
	Serial:  "SN0001",
	GTIN:    "09506000134352",
	Product: "Widget 7",
	Lot:     "LOT42",
	Expiry:  "271231",
}

func mustParse(t testing.TB, zpl string) *Template {
	t.Helper()
	tpl, err := Parse(zpl)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tpl
}

func mustJob(t testing.TB, job []byte) Job {
	t.Helper()
	j, err := ParseJob(job)
	if err != nil {
		t.Fatalf("ParseJob(%q): %v", job, err)
	}
	return j
}

func TestDefaultTemplateGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Values
	}{
		{"default", example},
		{"default-reprint", func() Values { v := example; v.Reprint = true; return v }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := mustParse(t, DefaultTemplate).Render(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".zpl")
			if *update {
				if err := os.WriteFile(path, job, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(job, want) {
				t.Errorf("job differs from %s:\n got %q\nwant %q", path, job, want)
			}
		})
	}
}

// The FNC1 sequence is the one Zebra documents: the escape character of
// ^BX, then 1, first and after the variable-length (10).
func TestDefaultTemplateDataMatrixField(t *testing.T) {
	job, err := mustParse(t, DefaultTemplate).Render(example)
	if err != nil {
		t.Fatal(err)
	}
	want := "^BXN,5,200,,,,_^FD_101095060001343521727123110LOT42_121SN0001^FS"
	if !bytes.Contains(job, []byte(want)) {
		t.Fatalf("job lacks %q:\n%s", want, job)
	}
}

// A rendered job read back gives the element string gs1.Parse accepts and
// the values in the text fields.
func TestRenderParseJobRoundTrip(t *testing.T) {
	tpl := mustParse(t, DefaultTemplate)
	for _, tc := range []struct {
		name string
		v    Values
		es   string // the DataMatrix data
		hri  string
	}{
		{"all", example, "010950600013435217271231" + "10LOT42\x1d21SN0001", "(01)09506000134352(17)271231(10)LOT42(21)SN0001"},
		{"gtin and serial", Values{GTIN: "09506000134352", Serial: "ABC"}, "0109506000134352" + "21ABC", "(01)09506000134352(21)ABC"},
		{"gtin-13 padded", Values{GTIN: "9506000134352", Serial: "A-1/2"}, "0109506000134352" + "21A-1/2", "(01)09506000134352(21)A-1/2"},
		{"lot last", Values{GTIN: "09506000134352", Lot: "L_1%"}, "0109506000134352" + "10L_1%", "(01)09506000134352(10)L_1%"},
		{"underscore serial", Values{GTIN: "09506000134352", Serial: "__x_", Product: "Ölfilter ^1~ \\& _"}, "0109506000134352" + "21__x_", "(01)09506000134352(21)__x_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := tpl.Render(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			j := mustJob(t, job)
			dm := j.DataMatrix()
			if len(dm) != 1 || !dm[0].GS1 || dm[0].Data != tc.es {
				t.Fatalf("DataMatrix = %+v, want GS1 %q", dm, tc.es)
			}
			r, err := gs1.Parse(dm[0].Data)
			if err != nil {
				t.Fatalf("gs1.Parse(%q): %v", dm[0].Data, err)
			}
			if r.Bracketed() != tc.hri {
				t.Errorf("gs1 reads %s, want %s", r.Bracketed(), tc.hri)
			}
			want := []string{tc.v.Product, tc.hri, "", tc.v.Serial}
			if got := j.Text(); !slices.Equal(got, want) {
				t.Errorf("text fields = %q, want %q", got, want)
			}
		})
	}
}

// escapeTemplate has one field of each kind a value can land in.
const escapeTemplate = `^XA
^FO0,0^A0N,20,20^FH_^FD{serial}^FS
^FO0,30^A0N,20,20^FD<{product}>^FS
^FO0,60^FB300,2^FH\^FD{lot}^FS
^FO0,90^BXN,4,200,,,,_^FD{expiry}^FS
^FO0,90^BXN,4,200,,,,#^FH_^FD{serial}^FS
^XZ`

func TestRenderEscapes(t *testing.T) {
	tpl := mustParse(t, escapeTemplate)
	for _, tc := range []struct {
		name   string
		v      Values
		errPh  string // the placeholder Render refuses, "" if none
		errPos int
		errB   byte
	}{
		{name: "plain", v: Values{Serial: "ABC-123", Product: "Widget", Lot: "L1"}},
		{name: "hex indicator in value", v: Values{Serial: "A_B", Product: "x", Lot: `a\b`}},
		{name: "prefixes in ^FH fields", v: Values{Serial: "^XZ~JA", Product: "ok", Lot: "^FS~HS"}},
		{name: "backslash in ^FB", v: Values{Serial: `\&`, Product: `\&`, Lot: `\& \\ \`}},
		{name: "control and non-ASCII", v: Values{Serial: "a\x1db\x00c\r\n\xff", Product: "Größe 5 – ✓", Lot: "\t", Expiry: "\x00\x1f_\x1d\xe8"}},
		{name: "escape characters of ^BX", v: Values{Serial: "#_#__1_d065", Product: "p", Lot: "#_", Expiry: "_1__d065#"}},
		{name: "braces", v: Values{Serial: "{serial}", Product: "{{x}}", Lot: "}"}},
		{name: "caret without ^FH", v: Values{Serial: "x", Product: "a^FS^XZ"}, errPh: "product", errPos: 1, errB: '^'},
		{name: "tilde without ^FH", v: Values{Serial: "x", Product: "~JA"}, errPh: "product", errPos: 0, errB: '~'},
		{name: "line feed without ^FH", v: Values{Serial: "x", Product: "a\nb"}, errPh: "product", errPos: 1, errB: '\n'},
		{name: "caret in ^BX without ^FH", v: Values{Expiry: "a^b"}, errPh: "expiry", errPos: 1, errB: '^'},
		{name: "tilde in ^BX without ^FH", v: Values{Expiry: "~"}, errPh: "expiry", errPos: 0, errB: '~'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := tpl.Render(tc.v)
			if tc.errPh != "" {
				var ve *ValueError
				if !errors.As(err, &ve) || ve.Placeholder != tc.errPh || ve.Pos != tc.errPos || ve.Byte != tc.errB {
					t.Fatalf("Render error = %v, want ValueError {%s} byte %q at %d", err, tc.errPh, tc.errB, tc.errPos)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range job {
				if c < 0x20 && c != '\n' || c == 0x7f {
					t.Fatalf("raw control byte 0x%02X at %d in %q", c, i, job)
				}
			}
			j := mustJob(t, job)
			want := []Field{
				{Data: tc.v.Serial}, {Data: "<" + tc.v.Product + ">"}, {Data: tc.v.Lot},
				{Barcode: "BX", Data: tc.v.Expiry}, {Barcode: "BX", Data: tc.v.Serial},
			}
			if len(j.Fields) != len(want) {
				t.Fatalf("fields = %+v", j.Fields)
			}
			for i, f := range j.Fields {
				if f.Barcode != want[i].Barcode || f.Data != want[i].Data || f.GS1 {
					t.Errorf("field %d = %+v, want %q", i, f, want[i].Data)
				}
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	tpl := mustParse(t, DefaultTemplate)
	for _, tc := range []struct {
		name string
		v    Values
		code string // the gs1 error code expected, "" for another error
		msg  string
	}{
		{"no gs1 data", Values{Product: "x"}, "", "no GS1 data"},
		{"bad check digit", Values{GTIN: "09506000134353", Serial: "1"}, gs1.CodeBadCheckDigit, "(01)09506000134353"},
		{"serial without gtin", Values{Serial: "S1"}, "missing_required", "(21)S1"},
		{"bad expiry", Values{GTIN: "09506000134352", Expiry: "271331"}, "bad_date", "(17)271331"},
		{"serial too long", Values{GTIN: "09506000134352", Serial: strings.Repeat("9", 21)}, "", "(21)"},
		{"serial outside CSET 82", Values{GTIN: "09506000134352", Serial: "A^B"}, "", "(21)A^B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tpl.Render(tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Render = %v, want an error mentioning %q", err, tc.msg)
			}
			var es gs1.Errors
			if tc.code != "" && (!errors.As(err, &es) || !es.Has(tc.code)) {
				t.Fatalf("Render = %v, want gs1 code %s", err, tc.code)
			}
		})
	}
}

func TestReprint(t *testing.T) {
	v := example
	v.Reprint = true
	job, err := mustParse(t, DefaultTemplate).Render(v)
	if err != nil {
		t.Fatal(err)
	}
	if txt := mustJob(t, job).Text(); !slices.Contains(txt, ReprintMark) {
		t.Fatalf("reprint text fields %q lack %s", txt, ReprintMark)
	}
	job, err = mustParse(t, DefaultTemplate).Render(example)
	if err != nil {
		t.Fatal(err)
	}
	if txt := mustJob(t, job).Text(); slices.Contains(txt, ReprintMark) {
		t.Fatalf("first print text fields %q carry %s", txt, ReprintMark)
	}
	plain := mustParse(t, "^XA^FO0,0^FH^FD{serial}^FS^XZ")
	if _, err := plain.Render(v); !errors.Is(err, ErrNoReprintMark) {
		t.Fatalf("reprint without {reprint}: %v", err)
	}
}

func TestPlaceholders(t *testing.T) {
	got := mustParse(t, DefaultTemplate).Placeholders()
	want := []string{"gs1_data", "product", "gs1", "reprint", "serial"}
	if !slices.Equal(got, want) {
		t.Fatalf("Placeholders = %q, want %q", got, want)
	}
}

func TestBraces(t *testing.T) {
	job, err := mustParse(t, "^XA^FX{{not}}^FS^FO0,0^FH^FD{{{serial}}}^FS^XZ").Render(Values{Serial: "7"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "^XA^FX{not}^FS^FO0,0^FH^FD{7}^FS^XZ"; string(job) != want {
		t.Fatalf("job = %q, want %q", job, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		zpl  string
		pos  int
		msg  string
	}{
		{"empty", "", 0, "no ^XA"},
		{"no format", "  \n", 0, "no ^XA"},
		{"no ^XZ", "^XA^FO0,0^FDx^FS", 0, "without ^XZ"},
		{"no ^XA", "^FO0,0^FDx^FS^XZ", 0, "outside ^XA"},
		{"^XZ alone", "^XA^XZ^XZ", 6, "^XZ without ^XA"},
		{"nested ^XA", "^XA^XA^XZ", 3, "inside the format"},
		{"text before", "hello^XA^XZ", 0, "before the first command"},
		{"text after", "^XA^XZ trailing", 6, "after ^XZ"},
		{"unknown placeholder", "^XA^FD{serail}^FS^XZ", 6, `unknown placeholder "{serail}"`},
		{"unclosed brace", "^XA^FD{serial^FS^XZ", 6, "{ without }"},
		{"lone close brace", "^XA^FDa}b^FS^XZ", 7, "} without {"},
		{"outside data", "^XA^FO{serial},0^FDx^FS^XZ", 6, "outside field data"},
		{"in a comment", "^XA^FX{lot}^FS^XZ", 6, "outside field data"},
		{"in ^BC", "^XA^BCN,50^FD{serial}^FS^XZ", 13, "^BC field"},
		{"gs1_data in text", "^XA^FD{gs1_data}^FS^XZ", 6, "belongs in a ^BX"},
		{"gs1_data with more", "^XA^BXN,4,200,,,,_^FD{gs1_data}x^FS^XZ", 21, "whole field data"},
		{"bx quality 140", "^XA^BXN,4,140^FD{serial}^FS^XZ", 16, "quality other than 200"},
		{"bx without escape", "^XA^BXN,4,200^FDx^FS^XZ", 3, "escape character"},
		{"data without ^FS", "^XA^FDabc^XZ", 9, "must end with ^FS"},
		{"tilde in data", "^XA^FDa~b^FS^XZ", 7, "not a command"},
		{"control command in data", "^XA^FDa~JA^FS^XZ", 7, "must end with ^FS"},
		{"data at the end", "^XA^FDabc", 3, "without ^FS"},
		{"prefix change", "^XA^CC+^XZ", 3, "prefix"},
		{"bad hex literal", "^XA^FH^FD_4^FS^XZ", 9, "two hex digits"},
		{"hex cut by placeholder", "^XA^FH^FDa_{serial}^FS^XZ", 10, "two hex digits"},
		{"bad dm escape literal", "^XA^BXN,4,200,,,,_^FD_9^FS^XZ", 21, "not supported"},
		{"control byte", "^XA^FDa\tb^FS^XZ", 7, "control byte"},
		{"cut command", "^XA^F", 3, "cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.zpl)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a SyntaxError", tc.zpl, err)
			}
			if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("Parse(%q) = %v, want offset %d and %q", tc.zpl, err, tc.pos, tc.msg)
			}
		})
	}
}
