package label

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/boombuler/barcode/datamatrix"
)

// The preview's geometry: 8 pixels a module, and a quiet zone of two
// modules, twice the minimum of ISO/IEC 16022, so a reader finds the
// symbol on a screen or a photo of one.
const (
	previewModule = 8
	previewQuiet  = 2
)

// Preview renders the first Data Matrix of t filled with v as a PNG,
// for checking a template's barcode without a printer. It encodes the
// data ParseJob reads from the rendered job, not the printer's own
// symbol: for a GS1 DataMatrix the same codewords, FNC1 (codeword 232)
// first and in place of every GS, so a reader decodes the same element
// string; the module layout may differ from the printer's where two
// encoders pick different encodation modes for the same data.
func Preview(t *Template, v Values) ([]byte, error) {
	job, err := t.Render(v)
	if err != nil {
		return nil, err
	}
	j, err := ParseJob(job)
	if err != nil {
		return nil, err
	}
	dms := j.DataMatrix()
	if len(dms) == 0 {
		return nil, errors.New("label: preview: the template has no ^BX field")
	}
	content := dms[0].Data
	switch {
	case dms[0].GS1:
		// boombuler/barcode reads a leading byte 232 as FNC1 and then
		// every later 232 as FNC1 too.
		content = string([]byte{datamatrix.FNC1}) + strings.ReplaceAll(content, string(gs), string([]byte{datamatrix.FNC1}))
	case strings.HasPrefix(content, string([]byte{datamatrix.FNC1})):
		return nil, errors.New("label: preview: data starting with byte 0xE8 would encode as GS1")
	}
	code, err := datamatrix.Encode(content)
	if err != nil {
		return nil, fmt.Errorf("label: preview: %w", err)
	}
	b := code.Bounds()
	w, h := b.Dx()+2*previewQuiet, b.Dy()+2*previewQuiet
	img := image.NewGray(image.Rect(0, 0, w*previewModule, h*previewModule))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.GrayModel.Convert(code.At(x, y)).(color.Gray).Y >= 0x80 {
				continue
			}
			px, py := (x-b.Min.X+previewQuiet)*previewModule, (y-b.Min.Y+previewQuiet)*previewModule
			for dy := range previewModule {
				row := img.Pix[(py+dy)*img.Stride:]
				for dx := range previewModule {
					row[px+dx] = 0
				}
			}
		}
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("label: preview: %w", err)
	}
	return out.Bytes(), nil
}
