package hidscan

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/device"
)

// collect returns an emit func that appends copies of scans to *out.
func collect(out *[]Scan) func(Scan) {
	return func(s Scan) {
		s.Data = append([]byte(nil), s.Data...)
		*out = append(*out, s)
	}
}

func press(mods, key byte) []byte { return []byte{mods, 0, key, 0, 0, 0, 0, 0} }

var release = make([]byte, 8)

// TestWedgeGapByTime drives the gap with report times alone: the decoder
// never reads a clock, so gaps are tested without waiting.
func TestWedgeGapByTime(t *testing.T) {
	d, err := NewWedge(WedgeConfig{Terminators: []string{TermNone}, Gap: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var got []Scan
	emit := collect(&got)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := d.Deadline(); ok {
		t.Error("Deadline set before any key")
	}
	d.Report(press(0, 0x1E), t0, emit) // 1
	d.Report(release, t0.Add(2*time.Millisecond), emit)
	dl, ok := d.Deadline()
	if want := t0.Add(52 * time.Millisecond); !ok || !dl.Equal(want) {
		t.Fatalf("Deadline = %v, %v; want %v (gap after the last report)", dl, ok, want)
	}
	d.Flush(dl.Add(-time.Nanosecond), emit)
	if len(got) != 0 {
		t.Fatalf("flushed before the gap: %q", got[0].Data)
	}
	d.Flush(dl, emit)
	if len(got) != 1 || string(got[0].Data) != "1" || !got[0].Time.Equal(t0.Add(2*time.Millisecond)) {
		t.Fatalf("after gap: %+v", got)
	}
	if _, ok := d.Deadline(); ok {
		t.Error("Deadline still set after the scan completed")
	}
	// A report after the gap completes the pending scan before it counts.
	d.Report(press(0, 0x1F), t0.Add(time.Second), emit) // 2
	d.Report(release, t0.Add(time.Second+time.Millisecond), emit)
	d.Report(press(0, 0x20), t0.Add(2*time.Second), emit) // 3
	if len(got) != 2 || string(got[1].Data) != "2" {
		t.Fatalf("scans = %+v, want 2 completed by the next report", got)
	}
}

func TestNewWedgeRejects(t *testing.T) {
	for _, cfg := range []WedgeConfig{
		{Layout: "dvorak"},
		{Terminators: []string{"escape"}},
		{Terminators: []string{TermNone, TermTab}},
		{Terminators: []string{TermNone}, Gap: -1},
	} {
		if _, err := NewWedge(cfg); err == nil {
			t.Errorf("NewWedge(%+v) = nil error", cfg)
		}
	}
	if got := strings.Join(Layouts(), ","); got != "de,fr,uk,us" {
		t.Errorf("Layouts() = %s", got)
	}
}

// TestWedgeResetForgetsKeyboardState: after a replug no key is down and
// Caps Lock is off, as on a fresh keyboard.
func TestWedgeResetForgetsKeyboardState(t *testing.T) {
	d, _ := NewWedge(WedgeConfig{})
	var got []Scan
	emit := collect(&got)
	now := time.Now()
	d.Report(press(0, keyCapsLock), now, emit)
	d.Report(press(0, 0x04), now, emit) // A held when the device is lost
	d.Reset()
	d.Report(press(0, 0x04), now, emit) // a fresh press, not a held key
	d.Report(press(0, keyEnter), now, emit)
	if len(got) != 1 || string(got[0].Data) != "a" {
		t.Errorf("after Reset: %+v, want one scan \"a\"", got)
	}
}

func TestWedgeAltCodeEdges(t *testing.T) {
	d, _ := NewWedge(WedgeConfig{})
	var got []Scan
	emit := collect(&got)
	now := time.Now()
	typeCode := func(digits ...byte) {
		d.Report([]byte{modLAlt, 0, 0, 0, 0, 0, 0, 0}, now, emit)
		for _, k := range digits {
			d.Report([]byte{modLAlt, 0, k, 0, 0, 0, 0, 0}, now, emit)
			d.Report([]byte{modLAlt, 0, 0, 0, 0, 0, 0, 0}, now, emit)
		}
		d.Report(release, now, emit)
	}
	typeCode(keyKP1+1, keyKP1+5, keyKP1+6) // 2 6 7 = 267 mod 256 = 11 (VT)
	typeCode()                             // Alt alone types nothing
	d.Report(press(0, keyEnter), now, emit)
	typeCode(keyKP0) // code 0 types nothing: a bad scan
	d.Report(press(0, keyEnter), now, emit)
	if len(got) != 2 || string(got[0].Data) != "\x0b" || got[0].Err != nil {
		t.Fatalf("scans = %+v", got)
	}
	var de *DecodeError
	if !errors.As(got[1].Err, &de) {
		t.Errorf("Alt+0: err = %v, want a DecodeError", got[1].Err)
	}
}

func TestCompose(t *testing.T) {
	for _, tc := range []struct {
		dead, r, want rune
		ok            bool
	}{
		{'^', 'e', 'ê', true}, {'^', 'U', 'Û', true}, {'¨', 'y', 'ÿ', true}, {'~', 'N', 'Ñ', true},
		{'´', 'Y', 'Ý', true}, {'^', 'x', 0, false}, {'x', 'a', 0, false},
	} {
		got, ok := compose(tc.dead, tc.r)
		if got != tc.want || ok != tc.ok {
			t.Errorf("compose(%q, %q) = %q, %v; want %q, %v", tc.dead, tc.r, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHIDPOSSymbologyCacheIsBounded(t *testing.T) {
	d := NewHIDPOS(HIDPOSConfig{})
	var got []Scan
	emit := collect(&got)
	for i := range 200 {
		r := make([]byte, 64)
		r[0], r[1], r[2], r[3], r[4], r[5] = 0x02, 1, ']', byte('!'+i%90), byte('!'+i/90), 'x'
		d.Report(r, time.Time{}, emit)
	}
	if len(d.syms) > 64 {
		t.Errorf("symbology cache holds %d entries", len(d.syms))
	}
	if len(got) != 200 || got[199].Symbology != "]"+string(rune('!'+199%90))+string(rune('!'+199/90)) {
		t.Errorf("last symbology = %q", got[len(got)-1].Symbology)
	}
}

func TestHIDPOSAbort(t *testing.T) {
	d := NewHIDPOS(HIDPOSConfig{})
	var got []Scan
	emit := collect(&got)
	r := make([]byte, 64)
	r[0], r[1], r[2], r[3], r[4], r[5], r[63] = 0x02, 1, ']', 'C', '1', 'A', 1
	d.Abort("nothing pending", emit)
	d.Report(r, time.Time{}, emit)
	if !d.Pending() || len(got) != 0 {
		t.Fatalf("continued report: pending %v, scans %d", d.Pending(), len(got))
	}
	d.Abort("lost", emit)
	if len(got) != 1 || string(got[0].Data) != "A" || got[0].Symbology != "]C1" || got[0].Err == nil || errors.Is(got[0].Err, device.ErrOversize) {
		t.Errorf("abort: %+v", got)
	}
}
