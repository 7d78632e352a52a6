package serialscan

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/scangw/scangw/device"
)

// emitted is one frame as a test sees it: a copy, since the framer reuses
// its memory after the callback.
type emitted struct {
	data string
	err  error
}

func (e emitted) String() string {
	if e.err != nil {
		return fmt.Sprintf("%q(%v)", e.data, e.err)
	}
	return fmt.Sprintf("%q", e.data)
}

func collect(f *Framer, pushes ...string) []emitted {
	var out []emitted
	for _, p := range pushes {
		f.Push([]byte(p), func(frame []byte, err error) {
			out = append(out, emitted{string(frame), err})
		})
	}
	return out
}

var framerCases = []struct {
	name   string
	term   string
	max    int
	pushes []string
	want   []emitted
}{
	{
		name:   "CRLF split across pushes",
		term:   "\r\n",
		max:    64,
		pushes: []string{"0123456789\r", "\nabc\r", "\n"},
		want:   []emitted{{"0123456789", nil}, {"abc", nil}},
	},
	{
		name:   "several frames in one push",
		term:   "\r\n",
		max:    64,
		pushes: []string{"one\r\ntwo\r\nthree\r\nfour"},
		want:   []emitted{{"one", nil}, {"two", nil}, {"three", nil}},
	},
	{
		name:   "oversize then normal frame",
		term:   "\r\n",
		max:    4,
		pushes: []string{"abcdefgh", "ijkl\r", "\nok\r\n"},
		want:   []emitted{{"abcd", device.ErrOversize}, {"ok", nil}},
	},
	{
		name:   "oversize by one byte, exactly max is fine",
		term:   "\r",
		max:    3,
		pushes: []string{"abcd\rabc\r"},
		want:   []emitted{{"abc", device.ErrOversize}, {"abc", nil}},
	},
	{
		name:   "zero max makes every non-empty frame oversize",
		term:   "\r",
		max:    0,
		pushes: []string{"a\r\r"},
		want:   []emitted{{"", device.ErrOversize}, {"", nil}},
	},
	{
		name:   "one-byte terminator",
		term:   "\r",
		max:    64,
		pushes: []string{"A1", "B2\rC3\r"},
		want:   []emitted{{"A1B2", nil}, {"C3", nil}},
	},
	{
		name:   "binary bytes inside frame",
		term:   "\r\n",
		max:    64,
		pushes: []string{"]d2\x1d0101234567890128\x1d21SN\x00\xff\r\n"},
		want:   []emitted{{"]d2\x1d0101234567890128\x1d21SN\x00\xff", nil}},
	},
	{
		name:   "empty frame",
		term:   "\r\n",
		max:    64,
		pushes: []string{"a\r\n\r\n", "\r\nb\r\n"},
		want:   []emitted{{"a", nil}, {"", nil}, {"", nil}, {"b", nil}},
	},
	{
		// The lone LF after a CR-terminated frame is a misconfigured
		// suffix; it stays in the data so the station reports it.
		name:   "LF after CR terminator is data",
		term:   "\r",
		max:    64,
		pushes: []string{"a\r\nb\r"},
		want:   []emitted{{"a", nil}, {"\nb", nil}},
	},
	{
		name:   "CR before CRLF is data",
		term:   "\r\n",
		max:    64,
		pushes: []string{"a\r", "\r", "\n"},
		want:   []emitted{{"a\r", nil}},
	},
	{
		name:   "self-overlapping terminator",
		term:   "aab",
		max:    64,
		pushes: []string{"xaa", "aabyaab"},
		want:   []emitted{{"xaa", nil}, {"y", nil}},
	},
	{
		name:   "partial terminator never completed",
		term:   "\r\n",
		max:    64,
		pushes: []string{"abc\r"},
		want:   nil,
	},
	{
		name:   "terminator byte by byte after oversize",
		term:   "END",
		max:    2,
		pushes: []string{"abcdefE", "N", "D", "okEND"},
		want:   []emitted{{"ab", device.ErrOversize}, {"ok", nil}},
	},
}

func TestFramer(t *testing.T) {
	for _, tc := range framerCases {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(NewFramer([]byte(tc.term), tc.max), tc.pushes...)
			if !slices.EqualFunc(got, tc.want, func(a, b emitted) bool {
				return a.data == b.data && errors.Is(a.err, b.err) && (a.err == nil) == (b.err == nil)
			}) {
				t.Errorf("frames\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestFramerReset(t *testing.T) {
	f := NewFramer([]byte("\r\n"), 8)
	// A partial frame, one half of a split terminator, and an oversize
	// run must all be forgotten.
	for _, partial := range []string{"abc", "abc\r", "0123456789"} {
		f.Push([]byte(partial), func([]byte, error) { t.Fatalf("emit before terminator") })
		f.Reset()
		got := collect(f, "\nnew\r\n")
		want := []emitted{{"\nnew", nil}}
		if !slices.Equal(got, want) {
			t.Errorf("after Reset of %q: got %v, want %v", partial, got, want)
		}
	}
}

func TestNewFramerEmptyTerminatorPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewFramer(nil, 1) did not panic")
		}
	}()
	NewFramer(nil, 1)
}

// FuzzFramer checks the framer against bytes.Split over the whole input,
// whatever the chunking: the same frames, in order, each oversize frame
// reported once.
func FuzzFramer(f *testing.F) {
	for _, tc := range framerCases {
		var in []byte
		var chunks []byte
		for _, p := range tc.pushes {
			in = append(in, p...)
			chunks = append(chunks, byte(len(p)))
		}
		f.Add([]byte(tc.term), uint16(tc.max), chunks, in)
	}
	f.Add([]byte("\r\n"), uint16(40), []byte{1, 0, 3}, bytes.Repeat([]byte("0123456789\r\n"), 20))

	f.Fuzz(func(t *testing.T, term []byte, maxLen uint16, chunks, in []byte) {
		if len(term) == 0 || len(term) > 4 {
			t.Skip()
		}
		// Small caps are where oversize handling lives.
		limit := int(maxLen % 512)
		fr := NewFramer(term, limit)

		var got []emitted
		consumed := 0
		emit := func(frame []byte, err error) {
			if err == nil {
				if len(frame) > limit {
					t.Fatalf("frame of %d bytes exceeds max %d", len(frame), limit)
				}
				if bytes.Contains(frame, term) {
					t.Fatalf("frame %q contains terminator %q", frame, term)
				}
			} else if !errors.Is(err, device.ErrOversize) || len(frame) != limit {
				t.Fatalf("error frame (%q, %v), want %d bytes with ErrOversize", frame, err, limit)
			}
			got = append(got, emitted{string(frame), err})
		}
		for i := 0; consumed < len(in); i++ {
			// A zero chunk size pushes an empty slice, which must be
			// harmless.
			size := len(in)
			if len(chunks) > 0 {
				size = int(chunks[i%len(chunks)] % 17)
			}
			if i > 4*len(in)+4 { // all-zero chunk sizes: finish in one go
				size = len(in)
			}
			end := min(consumed+size, len(in))
			fr.Push(in[consumed:end], emit)
			consumed = end
		}

		parts := bytes.Split(in, term)
		parts = parts[:len(parts)-1] // the tail has no terminator yet
		var want []emitted
		oversize := false
		for _, p := range parts {
			if len(p) > limit {
				want = append(want, emitted{string(p[:limit]), device.ErrOversize})
				oversize = true
			} else {
				want = append(want, emitted{string(p), nil})
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("term %q max %d input %q\n got %v\nwant %v", term, limit, in, got, want)
		}
		if !oversize {
			var joined []byte
			for _, e := range got {
				joined = append(append(joined, e.data...), term...)
			}
			// Not bytes.LastIndex: with a terminator like "00", input
			// "000" holds one frame and a pending "0", not two matches.
			if !bytes.HasPrefix(in, joined) {
				t.Fatalf("frames and terminators %q do not rebuild the start of input %q", joined, in)
			}
			if rest := in[len(joined):]; bytes.Contains(rest, term) {
				t.Fatalf("unconsumed %q still holds terminator %q", rest, term)
			}
		}
	})
}

// BenchmarkFramer measures one typical scan, 40 bytes plus CR LF, per push.
func BenchmarkFramer(b *testing.B) {
	// A GS1-128 scan with its AIM prefix and a GS separator.
	scan := []byte("]C101095011015300031724010110ABC1234\x1d21X\r\n")
	if len(scan) != 42 {
		b.Fatalf("scan is %d bytes, want 40+2", len(scan))
	}
	f := NewFramer([]byte("\r\n"), DefaultMaxFrame)
	frames := 0
	emit := func(frame []byte, err error) { frames++ }
	b.ReportAllocs()
	b.SetBytes(int64(len(scan)))
	for b.Loop() {
		f.Push(scan, emit)
	}
	if frames == 0 {
		b.Fatal("no frames")
	}
}

// BenchmarkFramerStream measures a 512-byte read carrying many scans, the
// shape a busy conveyor tunnel produces.
func BenchmarkFramerStream(b *testing.B) {
	stream := bytes.Repeat([]byte("0123456789012345678901234567890123456789\r\n"), 13)[:512]
	f := NewFramer([]byte("\r\n"), DefaultMaxFrame)
	emit := func(frame []byte, err error) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		f.Push(stream, emit)
	}
}
