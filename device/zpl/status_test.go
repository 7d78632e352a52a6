package zpl_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/device/zpl/zpltest"
)

// hs frames three strings as the ZPL II Programming Guide's ~HS does.
func hs(s1, s2, s3 string) string {
	return "\x02" + s1 + "\x03\r\n\x02" + s2 + "\x03\r\n\x02" + s3 + "\x03\r\n"
}

// ready is a ready direct-thermal printer in tear-off mode: 9600 baud
// 8N1 (aaa 030), label length 1218 dots, 203 dpi width mode 6.
var (
	readyS1 = "030,0,0,1218,000,0,0,0,000,0,0,0"
	readyS2 = "001,0,0,0,0,2,6,0,00000000,1,000"
	readyS3 = "1234,0"
	ready   = zpl.Status{CommSettings: 30, LabelLength: 1218, FunctionSettings: 1, PrintMode: 2, PrintWidthMode: 6, FormatWhilePrinting: true}
)

func TestParseHostStatus(t *testing.T) {
	with := func(f func(*zpl.Status)) zpl.Status { s := ready; f(&s); return s }
	for _, tc := range []struct {
		name   string
		in     string
		want   zpl.Status
		reason string
	}{
		{"ready", hs(readyS1, readyS2, readyS3), ready, ""},
		{"paper out and paused", hs("030,1,1,1218,000,0,0,0,000,0,0,0", readyS2, readyS3),
			with(func(s *zpl.Status) { s.PaperOut, s.Paused = true, true }), "paper_out"},
		{"paused", hs("030,0,1,1218,000,0,0,0,000,0,0,0", readyS2, readyS3),
			with(func(s *zpl.Status) { s.Paused = true }), "paused"},
		{"head open", hs(readyS1, "001,0,1,0,0,2,6,0,00000000,1,000", readyS3),
			with(func(s *zpl.Status) { s.HeadOpen = true }), "head_open"},
		{"head open beats paper out", hs("030,1,1,1218,000,0,0,0,000,0,0,0", "001,0,1,0,0,2,6,0,00000000,1,000", readyS3),
			with(func(s *zpl.Status) { s.PaperOut, s.Paused, s.HeadOpen = true, true, true }), "head_open"},
		{"ribbon out in thermal transfer", hs(readyS1, "001,0,0,1,1,2,6,0,00000000,1,000", readyS3),
			with(func(s *zpl.Status) { s.RibbonOut, s.ThermalTransfer = true, true }), "ribbon_out"},
		{"buffer full with formats waiting", hs("030,0,0,1218,012,1,0,1,000,0,0,0", readyS2, readyS3),
			with(func(s *zpl.Status) { s.FormatsInBuffer, s.BufferFull, s.PartialFormat = 12, true, true }), "buffer_full"},
		{"over temperature", hs("030,0,0,1218,000,0,0,0,000,0,0,1", readyS2, readyS3),
			with(func(s *zpl.Status) { s.OverTemp = true }), "over_temperature"},
		{"under temperature", hs("030,0,0,1218,000,0,0,0,000,0,1,0", readyS2, readyS3),
			with(func(s *zpl.Status) { s.UnderTemp = true }), "under_temperature"},
		{"corrupt RAM still prints", hs("030,0,0,1218,000,0,0,0,000,1,0,0", readyS2, readyS3),
			with(func(s *zpl.Status) { s.CorruptRAM = true }), ""},
		{"counters and modes", hs("030,0,0,0812,003,0,1,0,000,0,0,0", "129,0,0,0,1,1,6,1,00000042,1,007", "0000,1"),
			zpl.Status{CommSettings: 30, LabelLength: 812, FormatsInBuffer: 3, CommDiagnostic: true, FunctionSettings: 129,
				ThermalTransfer: true, PrintMode: 1, PrintWidthMode: 6, LabelWaiting: true, LabelsRemaining: 42,
				FormatWhilePrinting: true, GraphicsStored: 7, StaticRAM: true}, ""},
		{"no CR LF, other widths", "\x0230,0,0,1218,0,0,0,0,0,0,0,0\x03\x021,0,0,0,0,2,6,0,0,1,0\x03\x021234,0\x03", ready, ""},
		{"extra fields are ignored", hs(readyS1+",9", readyS2+",x", readyS3+",7"), ready, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := zpl.ParseHostStatus([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.Reason() != tc.reason || got.Ready() != (tc.reason == "") {
				t.Fatalf("Reason = %q Ready = %v, want %q", got.Reason(), got.Ready(), tc.reason)
			}
		})
	}
}

func TestParseHostStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"empty", "", "0 of 3 strings"},
		{"two strings", "\x02" + readyS1 + "\x03\r\n\x02" + readyS2 + "\x03\r\n", "2 of 3 strings"},
		{"no STX", readyS1 + "\x03", "want STX"},
		{"no ETX", "\x02" + readyS1, "no ETX"},
		{"junk after", hs(readyS1, readyS2, readyS3) + "x", "after the third string"},
		{"flag 2", hs("030,2,0,1218,000,0,0,0,000,0,0,0", readyS2, readyS3), "string 1 field b (paper out) at offset 5: want 0 or 1"},
		{"empty flag", hs(readyS1, "001,0,,0,0,2,6,0,00000000,1,000", readyS3), "string 2 field o (head up)"},
		{"letters in a number", hs("030,0,0,12x8,000,0,0,0,000,0,0,0", readyS2, readyS3), "dddd (label length)"},
		{"number too long", hs(readyS1, "001,0,0,0,0,2,6,0,0000000000,1,000", readyS3), "uuuuuuuu"},
		{"short string 1", hs("030,0,0", readyS2, readyS3), "string 1 has 3 fields, want 12"},
		{"short string 3", hs(readyS1, readyS2, "1234"), "string 3 has 1 fields, want 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := zpl.ParseHostStatus([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParseHostStatus(%q) = %v, want %q", tc.in, err, tc.msg)
			}
		})
	}
}

// The fake printer's reply is the manual's layout: it parses back to the
// state it was made from.
func TestHostStatusRoundTrip(t *testing.T) {
	for _, s := range []zpl.Status{
		{}, ready,
		{PaperOut: true, Paused: true, HeadOpen: true, RibbonOut: true, BufferFull: true, OverTemp: true, UnderTemp: true,
			CorruptRAM: true, CommDiagnostic: true, PartialFormat: true, ThermalTransfer: true, LabelWaiting: true,
			FormatWhilePrinting: true, StaticRAM: true, CommSettings: 255, LabelLength: 9999, FormatsInBuffer: 999,
			FunctionSettings: 255, PrintMode: 9, PrintWidthMode: 9, LabelsRemaining: 99999999, GraphicsStored: 999},
	} {
		b := zpltest.HostStatus(s)
		got, err := zpl.ParseHostStatus(b)
		if err != nil || got != s {
			t.Fatalf("ParseHostStatus(%q) = %+v, %v; want %+v", b, got, err, s)
		}
	}
	if got, want := string(zpltest.HostStatus(ready)), hs(readyS1, readyS2, "0000,0"); got != want {
		t.Fatalf("HostStatus(ready) = %q, want %q", got, want)
	}
}

func TestErrorReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&zpl.NotReadyError{Status: zpl.Status{PaperOut: true}}, "paper_out"},
		{fmt.Errorf("x: %w", &zpl.NotReadyError{Status: zpl.Status{HeadOpen: true}}), "head_open"},
		{fmt.Errorf("zpl: dial: %w: refused", zpl.ErrUnreachable), "unreachable"},
		{fmt.Errorf("zpl: status: %w", zpl.ErrNoReply), "no_status"},
		{fmt.Errorf("zpl: send: %w", context.Canceled), "canceled"},
		{errors.New("zpl: host status: bad"), "error"},
	} {
		if got := zpl.ErrorReason(tc.err); got != tc.want {
			t.Errorf("ErrorReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(&zpl.NotReadyError{}, zpl.ErrNotReady) {
		t.Fatal("a NotReadyError is not ErrNotReady")
	}
}

// FuzzParseHostStatus: no reply makes ParseHostStatus panic, and what it
// accepts survives the trip through the manual's layout.
func FuzzParseHostStatus(f *testing.F) {
	f.Add([]byte(hs(readyS1, readyS2, readyS3)))
	f.Add([]byte(hs("030,1,1,1218,012,1,0,1,000,0,0,1", "129,0,1,1,1,1,6,1,00000042,1,007", "0000,1")))
	f.Add([]byte("\x0230,0,0,1218,0,0,0,0,0,0,0,0\x03\x021,0,0,0,0,2,6,0,0,1,0\x03\x021234,0\x03"))
	f.Add([]byte(hs(readyS1+",9", readyS2, "1234")))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := zpl.ParseHostStatus(b)
		if err != nil {
			if s != (zpl.Status{}) {
				t.Fatalf("error %v with a non-zero Status", err)
			}
			return
		}
		back, err := zpl.ParseHostStatus(zpltest.HostStatus(s))
		if err != nil || back != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, back, err)
		}
		_ = s.Reason()
	})
}
