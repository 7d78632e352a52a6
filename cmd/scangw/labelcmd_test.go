package main

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/datamatrix"

	"github.com/scangw/scangw/station/gs1"
	"github.com/scangw/scangw/station/inspect"
	"github.com/scangw/scangw/station/label"
)

// readDataMatrix decodes the Data Matrix in a PNG as a camera reader
// would (no hint that the image is only the symbol) and returns the
// scan as a scanner transmits it: the AIM symbology identifier, then the
// data. gozxing reports a GS1 DataMatrix as ]d2 and gives its leading
// FNC1 as a GS in the text as well; a scanner sends that FNC1 only as
// the ]d2, so the GS is dropped here. The FNC1s between elements are GS
// in both.
func readDataMatrix(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := datamatrix.NewDataMatrixReader().DecodeWithoutHints(bmp)
	if err != nil {
		t.Fatalf("gozxing cannot read %s: %v", path, err)
	}
	sym, _ := res.GetResultMetadata()[gozxing.ResultMetadataType_SYMBOLOGY_IDENTIFIER].(string)
	text := res.GetText()
	if sym == "]d2" {
		if !strings.HasPrefix(text, string(gs1.GS)) {
			t.Fatalf("GS1 DataMatrix decoded without its leading FNC1: %q", text)
		}
		text = text[1:]
	}
	return sym + text
}

// TestLabelPreview: the PNG scangw label preview writes decodes to the
// element string it prints, and inspect, knowing the config's schemes,
// reads the serial back from it.
func TestLabelPreview(t *testing.T) {
	dir := t.TempDir()
	schemes, err := configSchemes(inspectConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	in := inspect.Inspector{Schemes: schemes}
	serialOnly := filepath.Join(dir, "serial.zpl")
	if err := os.WriteFile(serialOnly, []byte(label.SerialTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	const serial = "SN0000427" // counter 42 of the config's scheme unit
	for _, tc := range []struct {
		name   string
		args   []string
		sym    string
		data   string // as labelCmd prints it, GS as \x1d
		gtin   string
		expiry string
	}{
		{"default template", []string{"--gtin", "09506000134352", "--lot", "L1", "--expiry", "271231", "--product", "Widget"},
			"]d2", `0109506000134352` + `17271231` + `10L1\x1d21` + serial, "09506000134352", "2027-12-31"},
		{"GTIN-13 padded", []string{"--gtin", "9506000134352"},
			"]d2", `0109506000134352` + `21` + serial, "09506000134352", ""},
		{"serial template", []string{"--template", serialOnly, "--product", "Widget", "--reprint"},
			"]d1", serial, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".png")
			var stdout bytes.Buffer
			if err := labelCmd(&stdout, append([]string{"preview", "--serial", serial, "-o", out}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			printed, ok := strings.CutPrefix(strings.TrimSuffix(stdout.String(), "\n"), out+"\t")
			if !ok || printed != tc.data {
				t.Fatalf("printed %q, want %q", stdout.String(), out+"\t"+tc.data)
			}
			scan := readDataMatrix(t, out)
			if want := tc.sym + strings.ReplaceAll(printed, `\x1d`, string(gs1.GS)); scan != want {
				t.Fatalf("the PNG decodes to %q, want %q", scan, want)
			}
			r := in.Inspect(scan)
			got := r.Serial // AI 21; a plain code is the serial as a whole
			if r.Scheme == inspect.SchemePlain {
				got = strings.TrimPrefix(r.Input, r.Symbology)
			}
			if !r.Valid || got != serial || r.GTIN != tc.gtin || r.Expiry != tc.expiry ||
				r.SerialScheme != "unit" || r.SerialCounter == nil || *r.SerialCounter != 42 {
				t.Fatalf("inspect of %q: %+v", scan, r)
			}
		})
	}
}

func TestLabelPreviewUsage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "label.png")
	for _, args := range [][]string{
		{"preview", "--gtin", "09506000134352", "-o", out},
		{"preview", "--serial", "SN0000427", "--bogus", "-o", out},
		{"preview", "--serial", "SN0000427", "extra", "-o", out},
		{"print", "--serial", "SN0000427"},
		{},
	} {
		err := labelCmd(&bytes.Buffer{}, args)
		var ue usageError
		if !errors.As(err, &ue) || report("scangw label", err) != 2 {
			t.Errorf("labelCmd(%q) = %v, want a usage error (exit 2)", args, err)
		}
	}
	if err := labelCmd(&bytes.Buffer{}, []string{"preview", "-o", out}); err == nil || !strings.Contains(err.Error(), "--serial is required") {
		t.Errorf("missing --serial: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command line wrote %s (%v)", out, err)
	}
	// Not usage errors: a template that cannot be read or parsed.
	for _, tpl := range []string{"/nonexistent.zpl", writeTemplate(t, "^XA^FD{nope}^FS^XZ")} {
		err := labelCmd(&bytes.Buffer{}, []string{"preview", "--template", tpl, "--serial", "SN0000427", "-o", out})
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			t.Errorf("--template %s: %v, want a failure (exit 1)", tpl, err)
		}
	}
}

func writeTemplate(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.zpl")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
