package label

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/datamatrix"

	"github.com/scangw/scangw/station/gs1"
)

// decodePNG reads a Data Matrix from a PNG the way a camera reader would:
// no hint that the image is only the symbol.
func decodePNG(t *testing.T, b []byte) (text, symbology string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := datamatrix.NewDataMatrixReader().DecodeWithoutHints(bmp)
	if err != nil {
		t.Fatalf("gozxing could not decode the preview: %v", err)
	}
	sym, _ := res.GetResultMetadata()[gozxing.ResultMetadataType_SYMBOLOGY_IDENTIFIER].(string)
	return res.GetText(), sym
}

// The preview decodes to the data ParseJob reads from the printed job:
// a GS1 DataMatrix (]d2) whose element string gs1.Parse accepts.
func TestPreviewDecodes(t *testing.T) {
	tpl := mustParse(t, DefaultTemplate)
	for _, v := range []Values{
		example,
		{GTIN: "09506000134352", Serial: "ABC"},
		{GTIN: "09506000134352", Lot: "L%_1", Serial: strings.Repeat("Z", 20), Expiry: "300100"},
	} {
		job, err := tpl.Render(v)
		if err != nil {
			t.Fatal(err)
		}
		want := mustJob(t, job).DataMatrix()[0].Data
		img, err := Preview(tpl, v)
		if err != nil {
			t.Fatal(err)
		}
		text, sym := decodePNG(t, img)
		if sym != "]d2" {
			t.Errorf("symbology = %q, want ]d2 (FNC1 first)", sym)
		}
		// gozxing reports the leading FNC1 as a GS too.
		if text != string(gs1.GS)+want {
			t.Errorf("decoded %q, want GS + %q", text, want)
		}
		if _, err := gs1.Parse(sym + strings.TrimPrefix(text, string(gs1.GS))); err != nil {
			t.Errorf("gs1.Parse of the decoded preview: %v", err)
		}
	}
}

func TestPreviewPlainDataMatrix(t *testing.T) {
	tpl := mustParse(t, "^XA^FO0,0^BXN,5,200,,,,_^FH^FD{serial}^FS^XZ")
	img, err := Preview(tpl, Values{Serial: "a_b^c"})
	if err != nil {
		t.Fatal(err)
	}
	if text, sym := decodePNG(t, img); text != "a_b^c" || sym != "]d1" {
		t.Fatalf("decoded %q %q, want \"a_b^c\" ]d1", text, sym)
	}
}

func TestPreviewWithoutDataMatrix(t *testing.T) {
	if _, err := Preview(mustParse(t, "^XA^FO0,0^FH^FD{serial}^FS^XZ"), example); err == nil {
		t.Fatal("Preview of a label without ^BX succeeded")
	}
}
