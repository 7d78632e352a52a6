package device

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// part is one Read of a frame as a test sees it.
type part struct {
	data   string
	noRead bool
}

func (p part) String() string {
	if p.noRead {
		return fmt.Sprintf("noread(%q)", p.data)
	}
	return fmt.Sprintf("%q", p.data)
}

func splitParts(c Codes, frame string) []part {
	var out []part
	c.Reads(Read{}, []byte(frame), func(rd Read) {
		out = append(out, part{string(rd.Data), rd.NoRead})
	})
	return out
}

func noReads(texts ...string) [][]byte {
	var out [][]byte
	for _, s := range texts {
		out = append(out, []byte(s))
	}
	return out
}

var codesCases = []struct {
	name   string
	codes  Codes
	frames []string
	want   []part
}{
	{
		name:   "no options: the frame as is",
		frames: []string{"ABC,DEF", ""},
		want:   []part{{"ABC,DEF", false}, {"", false}},
	},
	{
		name:   "split in order",
		codes:  Codes{Split: []byte(",")},
		frames: []string{"A1,B2,C3"},
		want:   []part{{"A1", false}, {"B2", false}, {"C3", false}},
	},
	{
		name:   "split drops empty parts",
		codes:  Codes{Split: []byte(",")},
		frames: []string{",A,,B,", ",,", ""},
		want:   []part{{"A", false}, {"B", false}},
	},
	{
		name:   "multi-byte separator",
		codes:  Codes{Split: []byte("||")},
		frames: []string{"a|b||c|||d"},
		want:   []part{{"a|b", false}, {"c", false}, {"|d", false}},
	},
	{
		name:   "whole frame no-read",
		codes:  Codes{NoRead: noReads("NOREAD", "ERROR", "?")},
		frames: []string{"NOREAD", "?", "NOREAD2", "xERROR", "noread"},
		want:   []part{{"NOREAD", true}, {"?", true}, {"NOREAD2", false}, {"xERROR", false}, {"noread", false}},
	},
	{
		name:   "no-read among split codes",
		codes:  Codes{NoRead: noReads("NOREAD"), Split: []byte(";")},
		frames: []string{"A;NOREAD;B", "NOREAD;NOREAD"},
		want:   []part{{"A", false}, {"NOREAD", true}, {"B", false}, {"NOREAD", true}, {"NOREAD", true}},
	},
	{
		// A no-read text that holds the separator cannot match a part.
		name:   "no-read holding the separator",
		codes:  Codes{NoRead: noReads("NO,READ"), Split: []byte(",")},
		frames: []string{"NO,READ"},
		want:   []part{{"NO", false}, {"READ", false}},
	},
	{
		name:   "heartbeats dropped, codes and no-reads kept",
		codes:  Codes{NoRead: noReads("NOREAD"), Ignore: noReads("HB"), Split: []byte(",")},
		frames: []string{"HB", "A,HB,B", "NOREAD", "HBX"},
		want:   []part{{"A", false}, {"B", false}, {"NOREAD", true}, {"HBX", false}},
	},
	{
		name:   "empty no-read text matches an empty frame",
		codes:  Codes{NoRead: noReads("")},
		frames: []string{"", "x"},
		want:   []part{{"", true}, {"x", false}},
	},
}

func TestCodes(t *testing.T) {
	for _, tc := range codesCases {
		t.Run(tc.name, func(t *testing.T) {
			var got []part
			for _, f := range tc.frames {
				got = append(got, splitParts(tc.codes, f)...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("reads\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestCodesKeepsBase: each Read carries the frame's scanner, time and
// symbology, and its own copy of the bytes.
func TestCodesKeepsBase(t *testing.T) {
	base := Read{Scanner: "t1", Symbology: "]C1", Time: time.Unix(7, 0)}
	frame := []byte("AA,BB")
	var got []Read
	Codes{Split: []byte(",")}.Reads(base, frame, func(rd Read) { got = append(got, rd) })
	copy(frame, "XXXXX")
	if len(got) != 2 {
		t.Fatalf("%d reads, want 2", len(got))
	}
	for i, want := range []string{"AA", "BB"} {
		rd := got[i]
		if string(rd.Data) != want || rd.Scanner != "t1" || rd.Symbology != "]C1" || !rd.Time.Equal(base.Time) {
			t.Errorf("read %d = %+v, want %q with the base's fields", i, rd, want)
		}
	}
}

// TestCodesErrorFrame: an oversize frame is cut short, so it is neither
// split nor taken for a no-read: one Read with its error.
func TestCodesErrorFrame(t *testing.T) {
	c := Codes{NoRead: noReads("NOREAD"), Split: []byte(",")}
	var got []Read
	c.Reads(Read{Err: ErrOversize}, []byte("NOREAD"), func(rd Read) { got = append(got, rd) })
	c.Reads(Read{Err: ErrOversize}, []byte("A,B"), func(rd Read) { got = append(got, rd) })
	if len(got) != 2 || string(got[0].Data) != "NOREAD" || got[0].NoRead || string(got[1].Data) != "A,B" || got[1].Err != ErrOversize {
		t.Errorf("got %+v, want two whole error reads, no no-read", got)
	}
}

func TestCodesClone(t *testing.T) {
	orig := Codes{NoRead: noReads("NOREAD"), Split: []byte(",")}
	c := orig.Clone()
	orig.NoRead[0][0] = 'X'
	orig.Split[0] = ';'
	if got := splitParts(c, "NOREAD,A"); !slices.Equal(got, []part{{"NOREAD", true}, {"A", false}}) {
		t.Errorf("clone changed with the original: %v", got)
	}
}

// FuzzCodes checks Reads against bytes.Split and the properties any split
// must have: no part is empty or holds the separator, the parts rebuild the
// frame with its separators removed, and NoRead is exactly a whole-part
// match.
func FuzzCodes(f *testing.F) {
	for _, tc := range codesCases {
		for _, fr := range tc.frames {
			f.Add(bytes.Join(tc.codes.NoRead, []byte{0}), tc.codes.Split, []byte(fr))
		}
	}
	f.Fuzz(func(t *testing.T, noReadList, split, frame []byte) {
		if len(split) > 4 {
			t.Skip()
		}
		c := Codes{Split: split}
		if len(noReadList) > 0 {
			c.NoRead = bytes.Split(noReadList, []byte{0})
		}
		var got []part
		c.Reads(Read{}, frame, func(rd Read) {
			got = append(got, part{string(rd.Data), rd.NoRead})
		})

		var want []part
		parts := [][]byte{frame}
		if len(split) > 0 {
			parts = bytes.Split(frame, split)
		}
		for _, p := range parts {
			if len(split) > 0 && len(p) == 0 {
				continue
			}
			isNoRead := slices.ContainsFunc(c.NoRead, func(nr []byte) bool { return bytes.Equal(nr, p) })
			want = append(want, part{string(p), isNoRead})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("split %q noread %q frame %q\n got %v\nwant %v", split, c.NoRead, frame, got, want)
		}
		if len(split) == 0 {
			return
		}
		var joined []byte
		for _, p := range got {
			if p.data == "" || bytes.Contains([]byte(p.data), split) {
				t.Fatalf("part %q is empty or holds separator %q", p.data, split)
			}
			joined = append(joined, p.data...)
		}
		if want := bytes.ReplaceAll(frame, split, nil); !bytes.Equal(joined, want) {
			t.Fatalf("parts rebuild %q, want %q", joined, want)
		}
	})
}

func TestMetricsCount(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	sm := m.ScannerWithNoReads("s", "oversize")
	for _, rd := range []Read{{}, {}, {NoRead: true}, {Err: ErrOversize}, {Err: ErrNotConnected}} {
		sm.Count(rd)
	}
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"reads", m.Reads.WithLabelValues("s"), 2},
		{"noreads", m.NoReads.WithLabelValues("s"), 1},
		{"oversize", m.Errors.WithLabelValues("s", "oversize"), 1},
		{"io", m.Errors.WithLabelValues("s", "io"), 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	// A driver without the "oversize" reason must not panic, and one
	// without no-reads (HID) gets no no-read series.
	h := m.Scanner("h")
	h.Count(Read{Err: ErrOversize})
	h.Count(Read{NoRead: true})
	if n := testutil.CollectAndCount(m.NoReads); n != 1 {
		t.Errorf("%d no-read series, want 1 (scanner s only)", n)
	}
}
