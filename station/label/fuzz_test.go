package label

import (
	"errors"
	"testing"

	"github.com/scangw/scangw/station/gs1"
)

func checkSyntaxError(t *testing.T, err error, n int) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error is not a *SyntaxError: %#v", err)
	}
	if se.Pos < 0 || se.Pos > n || se.Msg == "" {
		t.Fatalf("error %v: offset outside input of %d bytes or no message", err, n)
	}
}

var nasty = Values{
	Serial: "^XZ~JA_\\#\x1d\x00", Product: "~HS^FS{}\xff", Lot: "_5E\\&", Expiry: "_1", GTIN: "^",
	Reprint: true,
}

// FuzzParse: no template makes Parse or Render panic, every template
// Parse accepts renders the example values, and every rendered job is one
// ParseJob accepts: a value can never make a job the printer reads
// differently from the template.
func FuzzParse(f *testing.F) {
	f.Add(DefaultTemplate)
	f.Add(escapeTemplate)
	f.Add("^XA^FX{{not}}^FS^FO0,0^FH^FD{{{serial}}}^FS^XZ")
	f.Add("^XA^BXN,4,200,,,,#^FH#^FD{gs1_data}^FS^FB9^FH^FD{lot}\\&{gtin}^FS^XZ~HS^XA^FV{expiry}^FS^XZ")
	f.Add("^XA^FO{serial},0^FDx^FS^XZ")
	f.Add("^XA^FH^FDa_{serial}^FS^XZ")
	f.Fuzz(func(t *testing.T, zpl string) {
		tpl, err := Parse(zpl)
		if err != nil {
			checkSyntaxError(t, err, len(zpl))
			return
		}
		job, err := tpl.Render(example)
		if err != nil {
			t.Fatalf("Render of the example values: %v", err)
		}
		if _, err := ParseJob(job); err != nil {
			t.Fatalf("ParseJob(%q) of a rendered job: %v", job, err)
		}
		job, err = tpl.Render(nasty)
		var ve *ValueError
		var ge gs1.Errors
		switch {
		case err == nil:
			if _, err := ParseJob(job); err != nil {
				t.Fatalf("ParseJob(%q) of a rendered job: %v", job, err)
			}
		case errors.As(err, &ve), errors.As(err, &ge), errors.Is(err, ErrNoReprintMark):
		default:
			t.Fatalf("Render: unexpected error %v", err)
		}
	})
}

// FuzzParseJob: no job makes ParseJob panic; errors are well-formed and
// fields lie inside the job.
func FuzzParseJob(f *testing.F) {
	for _, v := range []Values{example, nasty} {
		if job, err := mustParse(f, escapeTemplate).Render(Values{Serial: v.Serial, Lot: v.Lot}); err == nil {
			f.Add(job)
		}
	}
	job, _ := mustParse(f, DefaultTemplate).Render(example)
	f.Add(job)
	f.Add([]byte("^XA^BXN,5,200,,,,#^FH^FD_2310_5F##_7E^FS^XZ"))
	f.Add([]byte("^XA^BXN,5,200,,,,_^FDa_1b_d065_@_M^FS^XZ"))
	f.Add([]byte("~JSN\r\n^XA\r\n^FO0,0^A0N,20,20^FDone^FS\r\n^XZ\r\n~HS^XA^FB9^FDa\\&b\\\\^FS^XZ"))
	f.Fuzz(func(t *testing.T, job []byte) {
		j, err := ParseJob(job)
		if err != nil {
			checkSyntaxError(t, err, len(job))
			return
		}
		for _, fl := range j.Fields {
			if fl.Pos < 0 || fl.Pos+3 > len(job) {
				t.Fatalf("field at %d outside the job of %d bytes", fl.Pos, len(job))
			}
		}
	})
}
