package hidscan

import (
	"testing"
	"time"
)

// wedgeReports is a 30-character GS1 scan as a US-layout wedge scanner
// types it: press and release per character, Shift where needed, GS as
// Ctrl+], then Enter.
func wedgeReports() [][]byte {
	const text = "]C10109501101530003\x1d10ABC-1234"
	us := layouts["us"]
	var out [][]byte
	for _, r := range text {
		k, mods := findKey(us, r)
		out = append(out, []byte{mods, 0, k, 0, 0, 0, 0, 0}, make([]byte, 8))
	}
	return append(out, []byte{0, 0, keyEnter, 0, 0, 0, 0, 0}, make([]byte, 8))
}

func findKey(l *layout, r rune) (byte, byte) {
	if r == 0x1D {
		return 0x30, modLCtrl
	}
	for u := range l.keys {
		for lv, c := range l.keys[u].r {
			if c == r {
				if lv == lvlShift {
					return byte(u), modLShift
				}
				return byte(u), 0
			}
		}
	}
	panic("no key for " + string(r))
}

// BenchmarkWedgeScan is the decoding cost of one 30-character wedge scan
// (62 reports).
func BenchmarkWedgeScan(b *testing.B) {
	reports := wedgeReports()
	d, err := NewWedge(WedgeConfig{})
	if err != nil {
		b.Fatal(err)
	}
	scans := 0
	emit := func(s Scan) {
		if len(s.Data) != 30 || s.Err != nil {
			b.Fatalf("scan %q, %v", s.Data, s.Err)
		}
		scans++
	}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range reports {
			d.Report(r, at, emit)
		}
	}
	if scans == 0 {
		b.Fatal("no scans")
	}
}

// BenchmarkHIDPOSScan is the decoding cost of one 100-byte HID POS scan
// (two reports).
func BenchmarkHIDPOSScan(b *testing.B) {
	data := make([]byte, 100)
	for i := range data {
		data[i] = '0' + byte(i%10)
	}
	mk := func(part []byte, cont bool) []byte {
		r := make([]byte, 64)
		r[0], r[1] = 0x02, byte(len(part))
		copy(r[2:], "]d2")
		copy(r[5:], part)
		if cont {
			r[63] = 1
		}
		return r
	}
	reports := [][]byte{mk(data[:56], true), mk(data[56:], false)}
	d := NewHIDPOS(HIDPOSConfig{})
	emit := func(s Scan) {
		if len(s.Data) != 100 || s.Symbology != "]d2" {
			b.Fatalf("scan %q %q", s.Data, s.Symbology)
		}
	}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range reports {
			d.Report(r, at, emit)
		}
	}
}
