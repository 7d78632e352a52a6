package hidscan

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/device"
)

// Fuzz inputs are a config byte followed by records of
// [report length][ms since the previous report][report bytes...], so the
// fuzzer explores report sizes and gaps as well as contents.

// encodeFuzz turns a recording into a fuzz input; cfg picks the config.
func encodeFuzz(cfg byte, steps []step) []byte {
	out := []byte{cfg}
	for _, st := range steps {
		if st.err != nil {
			continue
		}
		ms := min(st.after/time.Millisecond, 255)
		out = append(out, byte(min(len(st.report), 255)), byte(ms))
		out = append(out, st.report[:min(len(st.report), 255)]...)
	}
	return out
}

// replayFuzz feeds the records in data to report, with a virtual clock.
func replayFuzz(data []byte, report func(r []byte, at time.Time)) time.Time {
	at := clockStart
	for len(data) >= 2 {
		n, ms := int(data[0]), time.Duration(data[1])*time.Millisecond
		data = data[2:]
		n = min(n, len(data))
		at = at.Add(ms)
		report(data[:n], at)
		data = data[n:]
	}
	return at
}

// seedFuzz adds every recording of the given mode as a seed.
func seedFuzz(f *testing.F, hidpos bool) {
	files, err := filepath.Glob("testdata/*.hid")
	if err != nil {
		f.Fatal(err)
	}
	layoutIdx := map[string]byte{"us": 0, "uk": 1, "de": 2, "fr": 3}
	for _, file := range files {
		rec := loadRecording(f, file)
		if (rec.cfg.Mode == ModeHIDPOS) != hidpos {
			continue
		}
		cfg := layoutIdx[rec.cfg.Layout]
		if rec.cfg.NoAIM {
			cfg = 1
		}
		f.Add(encodeFuzz(cfg, rec.steps))
	}
}

// checkScan holds for every scan whatever the input: bounded, and a
// damaged scan says why in a way the driver can count.
func checkScan(t *testing.T, s Scan, maxScan int) {
	if len(s.Data) > maxScan {
		t.Fatalf("scan of %d bytes exceeds max %d", len(s.Data), maxScan)
	}
	var de *DecodeError
	if s.Err != nil && !errors.Is(s.Err, device.ErrOversize) && !errors.As(s.Err, &de) {
		t.Fatalf("unexpected error type %T: %v", s.Err, s.Err)
	}
}

func FuzzWedge(f *testing.F) {
	seedFuzz(f, false)
	names := Layouts()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		// The config byte: layout, terminators, gap on or off.
		c := data[0]
		terms := [][]string{{TermEnter}, {TermTab}, {TermEnter, TermTab}, {TermNone}}[c>>2&3]
		gap := 50 * time.Millisecond
		if c&0x10 != 0 && terms[0] != TermNone {
			gap = -1
		}
		const maxScan = 64
		d, err := NewWedge(WedgeConfig{Layout: names[int(c&3)%len(names)], Terminators: terms, Gap: gap, MaxScan: maxScan})
		if err != nil {
			t.Fatal(err)
		}
		emit := func(s Scan) {
			checkScan(t, s, maxScan)
			if !utf8.Valid(s.Data) {
				t.Fatalf("wedge scan is not UTF-8: %q", s.Data)
			}
		}
		end := replayFuzz(data[1:], func(r []byte, at time.Time) { d.Report(r, at, emit) })
		d.Flush(end.Add(time.Hour), emit)
		if _, ok := d.Deadline(); ok && gap > 0 {
			t.Fatal("scan still pending after the gap")
		}
		d.Abort("end", emit)
	})
}

func FuzzHIDPOS(f *testing.F) {
	seedFuzz(f, true)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		const maxScan = 100
		d := NewHIDPOS(HIDPOSConfig{NoAIM: data[0]&1 != 0, MaxScan: maxScan})
		emit := func(s Scan) {
			checkScan(t, s, maxScan)
			if s.Symbology != "" && (len(s.Symbology) != 3 || s.Symbology[0] != ']') {
				t.Fatalf("symbology %q is not an AIM id", s.Symbology)
			}
		}
		replayFuzz(data[1:], func(r []byte, at time.Time) { d.Report(r, at, emit) })
		d.Abort("end", emit)
		if d.Pending() {
			t.Fatal("pending after Abort")
		}
	})
}
