package label

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJob(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  string
		want []Field
	}{
		{
			// Example 2 of the GS1 DataMatrix Guideline, written the way
			// Zebra's knowledge base does.
			name: "zebra gs1 datamatrix",
			job:  "^XA^FO50,50^BXN,9,200,20,20,,_^FD_1010950110102091717190508" + "10ABCD1234_12110^FS^XZ",
			want: []Field{{Barcode: "BX", Data: "01095011010209171719050810ABCD1234\x1d2110", GS1: true, Pos: 30}},
		},
		{
			name: "hex before data matrix escapes",
			job:  "^XA^BXN,5,200,,,,#^FH^FD_2310_5F##_7E^FS^XZ",
			want: []Field{{Barcode: "BX", Data: "0_#~", GS1: true, Pos: 21}},
		},
		{
			name: "fnc1 not first is a separator, dNNN and shifts",
			job:  "^XA^BXN,5,200,,,,_^FDa_1b_d065_@_M^FS^XZ",
			want: []Field{{Barcode: "BX", Data: "a\x1dbA\x00\x0d", Pos: 18}},
		},
		{
			name: "other quality keeps the data",
			job:  "^XA^BXN,5,140^FD_1x^FS^XZ",
			want: []Field{{Barcode: "BX", Data: "_1x", Pos: 13}},
		},
		{
			name: "several formats, control commands and line breaks",
			job:  "~JSN\r\n^XA\r\n^FO0,0^A0N,20,20^FDone^FS\r\n^XZ\r\n~HS^XA^FO0,0^BCN,50^FDC128\r\n^FS^FO1,1^FB100,2^FDa\\&b\\\\^FS^XZ\n",
			want: []Field{{Data: "one", Pos: 27}, {Barcode: "BC", Data: "C128", Pos: 62}, {Data: "a\nb\\", Pos: 88}},
		},
		{
			name: "lower case commands",
			job:  "^xa^fo0,0^fh^fd_41^fs^xz",
			want: []Field{{Data: "A", Pos: 12}},
		},
		{
			name: "field variable",
			job:  "^XA^FVvar^FS^XZ",
			want: []Field{{Data: "var", Pos: 3}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := mustJob(t, []byte(tc.job))
			if len(j.Fields) != len(tc.want) {
				t.Fatalf("fields = %+v, want %+v", j.Fields, tc.want)
			}
			for i := range tc.want {
				if j.Fields[i] != tc.want[i] {
					t.Errorf("field %d = %+v, want %+v", i, j.Fields[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseJobErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  string
		pos  int
		msg  string
	}{
		{"injected ^XZ", "^XA^FDa^XZ^XA^FDb^FS^XZ", 7, "must end with ^FS"},
		{"injected ~", "^XA^FDa~JA^FS^XZ", 7, "must end with ^FS"},
		{"tilde as escape character", "^XA^BXN,5,200,0,0,6,~^FD~1x^FS^XZ", 20, "not a command"},
		{"caret in parameter", "^XA^FO^^FS^XZ", 6, "not a command"},
		{"bad hex", "^XA^FH^FD_G0^FS^XZ", 9, "two hex digits"},
		{"hex at the end", "^XA^FH^FDab_^FS^XZ", 11, "two hex digits"},
		{"escape at the end", "^XA^BXN,5,200,,,,_^FDab_^FS^XZ", 21, "at the end"},
		{"dNNN too big", "^XA^BXN,5,200,,,,_^FD_d256^FS^XZ", 21, "up to 255"},
		{"dNNN short", "^XA^BXN,5,200,,,,_^FD_d25^FS^XZ", 21, "three digits"},
		{"structured append", "^XA^BXN,5,200,,,,_^FD_2001002003^FS^XZ", 21, "not supported"},
		{"unterminated", "^XA^FDx^FS", 0, "without ^XZ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob([]byte(tc.job))
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("ParseJob(%q) = %v, want offset %d and %q", tc.job, err, tc.pos, tc.msg)
			}
		})
	}
}
