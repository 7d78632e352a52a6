package device

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
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

// framerCase is one stream and the frames it must yield; stx selects
// STX/ETX framing, where term is unused unless set to show it is ignored.
type framerCase struct {
	name   string
	term   string
	stx    bool
	prefix string
	max    int
	pushes []string
	want   []emitted
}

func (tc framerCase) config() FrameConfig {
	return FrameConfig{Terminator: []byte(tc.term), STXETX: tc.stx, Prefix: []byte(tc.prefix), MaxFrame: tc.max}
}

var framerCases = []framerCase{
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
		want:   []emitted{{"abcd", ErrOversize}, {"ok", nil}},
	},
	{
		name:   "oversize by one byte, exactly max is fine",
		term:   "\r",
		max:    3,
		pushes: []string{"abcd\rabc\r"},
		want:   []emitted{{"abc", ErrOversize}, {"abc", nil}},
	},
	{
		name:   "zero max makes every non-empty frame oversize",
		term:   "\r",
		max:    0,
		pushes: []string{"a\r\r"},
		want:   []emitted{{"", ErrOversize}, {"", nil}},
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
		want:   []emitted{{"ab", ErrOversize}, {"ok", nil}},
	},
	{
		name:   "STX/ETX frames back to back",
		stx:    true,
		max:    64,
		pushes: []string{"\x02ABC\x03\x02DEF\x03"},
		want:   []emitted{{"ABC", nil}, {"DEF", nil}},
	},
	{
		// SICK and Datalogic readers can append CR LF after ETX.
		name:   "STX/ETX drops noise and CR LF outside frames",
		stx:    true,
		max:    64,
		pushes: []string{"junk\x02A1\x03\r\n", "\x03\x02B2\x03\r\n"},
		want:   []emitted{{"A1", nil}, {"B2", nil}},
	},
	{
		name:   "STX/ETX new STX restarts the frame",
		stx:    true,
		max:    64,
		pushes: []string{"\x02par", "tial\x02fu", "ll\x03"},
		want:   []emitted{{"full", nil}},
	},
	{
		name:   "STX/ETX several STX in one push",
		stx:    true,
		max:    64,
		pushes: []string{"\x02a\x02b\x02c\x03"},
		want:   []emitted{{"c", nil}},
	},
	{
		name:   "STX/ETX empty frame",
		stx:    true,
		max:    64,
		pushes: []string{"\x02\x03\x02x\x03"},
		want:   []emitted{{"", nil}, {"x", nil}},
	},
	{
		name:   "STX/ETX partial frame never completed",
		stx:    true,
		max:    64,
		pushes: []string{"\x02abc"},
		want:   nil,
	},
	{
		name:   "STX/ETX ignores the terminator",
		term:   "\r",
		stx:    true,
		max:    64,
		pushes: []string{"\x02a\rb\x03\r"},
		want:   []emitted{{"a\rb", nil}},
	},
	{
		name:   "STX/ETX binary bytes inside frame",
		stx:    true,
		max:    64,
		pushes: []string{"\x02]d2\x1d01\r\n\x00\xff\x03"},
		want:   []emitted{{"]d2\x1d01\r\n\x00\xff", nil}},
	},
	{
		name:   "STX/ETX oversize then normal frame",
		stx:    true,
		max:    3,
		pushes: []string{"\x02abcdef", "gh\x03\x02abc\x03"},
		want:   []emitted{{"abc", ErrOversize}, {"abc", nil}},
	},
	{
		name:   "STX/ETX oversize abandoned by a new STX",
		stx:    true,
		max:    3,
		pushes: []string{"\x02abcdefgh\x02ok\x03"},
		want:   []emitted{{"ok", nil}},
	},
	{
		name:   "prefix stripped when present",
		term:   "\r",
		prefix: "ID:",
		max:    64,
		pushes: []string{"ID:123\r456\rID:\rI\r"},
		want:   []emitted{{"123", nil}, {"456", nil}, {"", nil}, {"I", nil}},
	},
	{
		name:   "prefix split across pushes",
		term:   "\r\n",
		prefix: "ID:",
		max:    64,
		pushes: []string{"I", "D", ":9\r", "\n"},
		want:   []emitted{{"9", nil}},
	},
	{
		name:   "prefix stripped once and only at the start",
		term:   "\r",
		prefix: "P",
		max:    64,
		pushes: []string{"PPx\raPb\r"},
		want:   []emitted{{"Px", nil}, {"aPb", nil}},
	},
	{
		name:   "prefix longer than the frame",
		term:   "\r",
		prefix: "LONG",
		max:    64,
		pushes: []string{"LO\r"},
		want:   []emitted{{"LO", nil}},
	},
	{
		// The cap is on the code, not on the reader's header.
		name:   "prefix does not count against max",
		term:   "\r",
		prefix: "ID:",
		max:    3,
		pushes: []string{"ID:abc\rID:abcd\rabcd\r"},
		want:   []emitted{{"abc", nil}, {"abc", ErrOversize}, {"abc", ErrOversize}},
	},
	{
		name:   "prefix on STX/ETX frames",
		stx:    true,
		prefix: "]C1",
		max:    64,
		pushes: []string{"\x02]C1xyz\x03\r\n\x02]C", "0abc\x03"},
		want:   []emitted{{"xyz", nil}, {"]C0abc", nil}},
	},
	{
		name:   "prefix on a long oversize frame",
		term:   "\r\n",
		prefix: "HDR",
		max:    2,
		pushes: []string{"HDR", "0123456789", "\r\nHDRok\r\n"},
		want:   []emitted{{"01", ErrOversize}, {"ok", nil}},
	},
}

func TestFramer(t *testing.T) {
	for _, tc := range framerCases {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(NewFramer(tc.config()), tc.pushes...)
			if !sameFrames(got, tc.want) {
				t.Errorf("frames\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func sameFrames(got, want []emitted) bool {
	return slices.EqualFunc(got, want, func(a, b emitted) bool {
		return a.data == b.data && errors.Is(a.err, b.err) && (a.err == nil) == (b.err == nil)
	})
}

// TestFramerChunking: whatever way a stream is cut into pushes (a TCP
// segment, a serial read), the frames are the same: all in one push, byte
// by byte, and cut in two at every byte boundary.
func TestFramerChunking(t *testing.T) {
	for _, tc := range framerCases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Join(tc.pushes, "")
			if got := collect(NewFramer(tc.config()), in); !sameFrames(got, tc.want) {
				t.Errorf("one push: got %v, want %v", got, tc.want)
			}
			bytewise := strings.Split(in, "")
			if got := collect(NewFramer(tc.config()), bytewise...); !sameFrames(got, tc.want) {
				t.Errorf("byte by byte: got %v, want %v", got, tc.want)
			}
			for cut := range len(in) + 1 {
				if got := collect(NewFramer(tc.config()), in[:cut], in[cut:]); !sameFrames(got, tc.want) {
					t.Errorf("cut at %d: got %v, want %v", cut, got, tc.want)
				}
			}
		})
	}
}

func TestFramerReset(t *testing.T) {
	f := NewFramer(FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 8})
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

// TestFramerResetSTX: an STX frame cut by a disconnect is not completed by
// the ETX of the next connection.
func TestFramerResetSTX(t *testing.T) {
	f := NewFramer(FrameConfig{STXETX: true, MaxFrame: 8})
	f.Push([]byte("\x02abc"), func([]byte, error) { t.Fatalf("emit before ETX") })
	f.Reset()
	got := collect(f, "def\x03\x02new\x03")
	if want := []emitted{{"new", nil}}; !slices.Equal(got, want) {
		t.Errorf("after Reset: got %v, want %v", got, want)
	}
}

func TestNewFramerEmptyTerminatorPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewFramer without a terminator did not panic")
		}
	}()
	NewFramer(FrameConfig{MaxFrame: 1})
}

func TestFrameConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  FrameConfig
		ok   bool
	}{
		{"terminator", FrameConfig{Terminator: []byte("\r")}, true},
		{"STX/ETX without terminator", FrameConfig{STXETX: true}, true},
		{"STX/ETX with terminator", FrameConfig{STXETX: true, Terminator: []byte("\r\n")}, true},
		{"neither", FrameConfig{Prefix: []byte("x")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestFramerNoAllocs: once its buffer has grown, the framer allocates
// nothing per frame, in every mode, so a fast tunnel costs no GC.
func TestFramerNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    FrameConfig
		stream string
	}{
		{"terminator", FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 64}, "]C1ABC123\x1d21X\r\n0123\r\n"},
		{"STX/ETX", FrameConfig{STXETX: true, MaxFrame: 64}, "\x02]C1ABC123\x03\r\n\x02x\x02y\x03"},
		{"prefix", FrameConfig{Terminator: []byte("\r"), Prefix: []byte("ID:"), MaxFrame: 64}, "ID:0123456789\rID:x\r"},
		{"oversize", FrameConfig{Terminator: []byte("\r"), MaxFrame: 4}, "0123456789\r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFramer(tc.cfg)
			stream := []byte(tc.stream)
			frames := 0
			emit := func([]byte, error) { frames++ }
			f.Push(stream, emit) // grow the buffer
			if n := testing.AllocsPerRun(100, func() { f.Push(stream, emit) }); n != 0 {
				t.Errorf("%v allocations per push, want 0", n)
			}
			if frames == 0 {
				t.Fatal("no frames")
			}
		})
	}
}

// FuzzFramer checks the framer against a reference over the whole input
// (bytes.Split at the terminator, or a byte-wise STX/ETX scan), whatever
// the chunking: the same frames, in order, the prefix stripped where
// present, each oversize frame reported once.
func FuzzFramer(f *testing.F) {
	for _, tc := range framerCases {
		var in []byte
		var chunks []byte
		for _, p := range tc.pushes {
			in = append(in, p...)
			chunks = append(chunks, byte(len(p)))
		}
		f.Add([]byte(tc.term), uint16(tc.max), chunks, in, tc.stx, []byte(tc.prefix))
	}
	f.Add([]byte("\r\n"), uint16(40), []byte{1, 0, 3}, bytes.Repeat([]byte("0123456789\r\n"), 20), false, []byte(nil))
	f.Add([]byte(nil), uint16(12), []byte{1, 0, 3}, bytes.Repeat([]byte("\x02]C10123456789\x03\r\n"), 20), true, []byte("]C1"))

	f.Fuzz(func(t *testing.T, term []byte, maxLen uint16, chunks, in []byte, stx bool, prefix []byte) {
		if (!stx && len(term) == 0) || len(term) > 4 || len(prefix) > 4 {
			t.Skip()
		}
		// Small caps are where oversize handling lives.
		limit := int(maxLen % 512)
		fr := NewFramer(FrameConfig{Terminator: term, STXETX: stx, Prefix: prefix, MaxFrame: limit})

		var got []emitted
		emit := func(frame []byte, err error) {
			if err == nil {
				if len(frame) > limit {
					t.Fatalf("frame of %d bytes exceeds max %d", len(frame), limit)
				}
				if !stx && bytes.Contains(frame, term) {
					t.Fatalf("frame %q contains terminator %q", frame, term)
				}
			} else if !errors.Is(err, ErrOversize) || len(frame) != limit {
				t.Fatalf("error frame (%q, %v), want %d bytes with ErrOversize", frame, err, limit)
			}
			if stx && bytes.ContainsAny(frame, "\x02\x03") {
				t.Fatalf("STX/ETX frame %q holds STX or ETX", frame)
			}
			got = append(got, emitted{string(frame), err})
		}
		pushChunked(fr, in, chunks, emit)

		var want []emitted
		oversize := false
		for _, p := range referenceFrames(in, term, stx) {
			if len(prefix) > 0 && bytes.HasPrefix(p, prefix) {
				p = p[len(prefix):]
			}
			if len(p) > limit {
				want = append(want, emitted{string(p[:limit]), ErrOversize})
				oversize = true
			} else {
				want = append(want, emitted{string(p), nil})
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("term %q stx %v prefix %q max %d input %q\n got %v\nwant %v", term, stx, prefix, limit, in, got, want)
		}
		if !oversize && !stx && len(prefix) == 0 {
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

// pushChunked feeds in to fr in pieces whose sizes cycle through chunks.
func pushChunked(fr *Framer, in, chunks []byte, emit func([]byte, error)) {
	consumed := 0
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
}

// referenceFrames is the frames of a whole stream, found the slow, obvious
// way; a frame still open at the end is not one.
func referenceFrames(in, term []byte, stx bool) [][]byte {
	if !stx {
		parts := bytes.Split(in, term)
		return parts[:len(parts)-1]
	}
	var frames [][]byte
	var cur []byte
	inside := false
	for _, b := range in {
		switch {
		case b == STX:
			inside, cur = true, []byte{}
		case !inside:
		case b == ETX:
			frames = append(frames, cur)
			inside = false
		default:
			cur = append(cur, b)
		}
	}
	return frames
}

// BenchmarkFramer measures one typical scan, 40 bytes plus CR LF, per push.
func BenchmarkFramer(b *testing.B) {
	// A GS1-128 scan with its AIM prefix and a GS separator.
	scan := []byte("]C101095011015300031724010110ABC1234\x1d21X\r\n")
	if len(scan) != 42 {
		b.Fatalf("scan is %d bytes, want 40+2", len(scan))
	}
	f := NewFramer(FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 8192})
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
	f := NewFramer(FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 8192})
	emit := func(frame []byte, err error) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		f.Push(stream, emit)
	}
}
