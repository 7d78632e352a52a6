package device

import (
	"bytes"
	"errors"
	"math"
)

// STX and ETX delimit a frame in STX/ETX framing (ASCII start and end of
// text), the factory default of many fixed industrial readers.
const (
	STX = 0x02
	ETX = 0x03
)

// DefaultTerminator is the suffix drivers assume when none is configured
// (a carriage return). Should a scanner send CR LF instead, its frames
// start with an LF the station rejects visibly; the opposite guess would
// yield no frames at all until the first oversize error.
const DefaultTerminator = "\r"

// FrameConfig says how a byte stream (a serial line, a TCP connection) is
// cut into frames.
type FrameConfig struct {
	// Terminator ends each frame (the scanner's configured suffix). It is
	// unused with STXETX.
	Terminator []byte
	// STXETX frames are STX … ETX; bytes outside such a pair (a CR LF
	// some readers append after ETX, line noise) are dropped, and an STX
	// before the ETX drops the partial frame and starts a new one.
	STXETX bool
	// Prefix, when a frame starts with it, is stripped: a fixed header
	// some readers put before every result. A frame that does not start
	// with it is kept whole.
	Prefix []byte
	// MaxFrame caps a frame's length after the prefix is stripped; longer
	// frames become ErrOversize reads. A negative value is taken as 0.
	MaxFrame int
}

// WithDefaults returns a copy of c that shares no memory with it, with
// the default terminator (DefaultTerminator) unless framing is STX/ETX,
// and maxFrame when MaxFrame is not set: what a driver keeps while its
// caller may reuse its slices.
func (c FrameConfig) WithDefaults(maxFrame int) FrameConfig {
	c.Terminator, c.Prefix = bytes.Clone(c.Terminator), bytes.Clone(c.Prefix)
	if len(c.Terminator) == 0 && !c.STXETX {
		c.Terminator = []byte(DefaultTerminator)
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = maxFrame
	}
	return c
}

// Validate reports a FrameConfig no Framer can work with.
func (c FrameConfig) Validate() error {
	if !c.STXETX && len(c.Terminator) == 0 {
		return errors.New("frame: a terminator is required unless framing is STX/ETX")
	}
	return nil
}

// Framer cuts a byte stream into frames at a terminator, or between STX
// and ETX. It keeps at most len(prefix)+maxLen+len(terminator) bytes,
// whatever the stream holds, so a scanner that never ends a frame cannot
// grow the gateway's memory.
//
// A Framer is not safe for concurrent use; one reading goroutine owns it.
type Framer struct {
	stx    bool
	term   []byte
	prefix []byte
	// fail is the KMP failure table of term. A byte-wise matcher is needed
	// because a terminator may arrive split across reads, and a naive
	// "restart on mismatch" misses the CRLF in "\r\r\n".
	fail []int
	max  int
	// limit is how many bytes of a frame are ever kept: enough to strip
	// the prefix and hand out the first max bytes of an oversize frame.
	limit int

	// buf holds the start of the current frame, including any terminator
	// bytes matched so far; it stops growing at limit.
	buf []byte
	// n counts the current frame's bytes (with matched terminator bytes),
	// saturating at limit+1 so a long run on a 32-bit board cannot
	// overflow it.
	n int
	// matched is how many bytes of term end the stream so far.
	matched int
	// inside is, with STX/ETX, whether an STX opened the current frame.
	inside bool
}

// NewFramer returns a Framer for cfg. It panics on a config Validate
// rejects: that is a configuration bug, and config validation is where it
// must be caught.
func NewFramer(cfg FrameConfig) *Framer {
	if err := cfg.Validate(); err != nil {
		panic("device: " + err.Error())
	}
	// The cap only has to exceed any real symbol; clamping keeps limit
	// from overflowing.
	maxLen := min(max(cfg.MaxFrame, 0), math.MaxInt32)
	f := &Framer{stx: cfg.STXETX, prefix: bytes.Clone(cfg.Prefix), max: maxLen}
	if !f.stx {
		f.term = bytes.Clone(cfg.Terminator)
		f.fail = failureTable(f.term)
	}
	f.limit = min(len(f.prefix), math.MaxInt32) + maxLen + len(f.term)
	return f
}

func failureTable(term []byte) []int {
	fail := make([]int, len(term))
	for i, k := 1, 0; i < len(term); i++ {
		for k > 0 && term[i] != term[k] {
			k = fail[k-1]
		}
		if term[i] == term[k] {
			k++
		}
		fail[i] = k
	}
	return fail
}

// Push feeds p to the framer and calls emit once for every frame it
// completes, in order. The frame excludes the terminator (or STX and ETX)
// and the prefix, and is only valid during the call: the framer reuses its
// memory.
//
// An empty frame (two terminators in a row) is emitted as is: the station
// answers it with a reason, which tells the operator more than silence.
// A frame longer than maxLen is emitted once, when its end arrives, as its
// first maxLen bytes with ErrOversize, so an oversize scan earns exactly
// one bad signal.
func (f *Framer) Push(p []byte, emit func(frame []byte, err error)) {
	if f.stx {
		f.pushSTX(p, emit)
		return
	}
	for len(p) > 0 {
		if f.matched == 0 {
			// Fast path: nothing is pending, so every byte before the
			// next possible terminator start is plain frame content.
			i := bytes.IndexByte(p, f.term[0])
			if i < 0 {
				i = len(p)
			}
			f.add(p[:i])
			p = p[i:]
			if len(p) == 0 {
				return
			}
		}
		b := p[0]
		f.add(p[:1])
		p = p[1:]
		k := f.matched
		for k > 0 && b != f.term[k] {
			k = f.fail[k-1]
		}
		if b == f.term[k] {
			k++
		}
		f.matched = k
		if k == len(f.term) {
			f.emit(f.n-len(f.term), emit)
		}
	}
}

// pushSTX is Push for STX/ETX framing.
func (f *Framer) pushSTX(p []byte, emit func(frame []byte, err error)) {
	for len(p) > 0 {
		if !f.inside {
			i := bytes.IndexByte(p, STX)
			if i < 0 {
				return // noise between frames
			}
			f.inside, p = true, p[i+1:]
			continue
		}
		end := bytes.IndexByte(p, ETX)
		chunk := p
		if end >= 0 {
			chunk = p[:end]
		}
		// A reader that restarts a result mid-way (a reset, a lost ETX)
		// sends a new STX; what came before it is not part of the new
		// frame.
		if i := bytes.LastIndexByte(chunk, STX); i >= 0 {
			f.Reset()
			f.inside, p, chunk = true, p[i+1:], chunk[i+1:]
			if end >= 0 {
				end -= i + 1
			}
		}
		f.add(chunk)
		if end < 0 {
			return
		}
		p = p[end+1:]
		f.emit(f.n, emit)
	}
}

// emit hands out the current frame of content bytes (terminator excluded)
// and starts the next one.
func (f *Framer) emit(content int, emit func(frame []byte, err error)) {
	// n saturates at limit+1, so content > max exactly when the frame was
	// oversize, even after saturation; buf holds at least the prefix's
	// length whenever content does. The capped slices keep a callback's
	// append from writing into the framer's buffer.
	start := 0
	if content >= len(f.prefix) && bytes.HasPrefix(f.buf, f.prefix) {
		start = len(f.prefix)
		content -= start
	}
	if content > f.max {
		emit(f.buf[start:start+f.max:start+f.max], ErrOversize)
	} else {
		emit(f.buf[start:start+content:start+content], nil)
	}
	f.Reset()
}

// add appends content to the current frame, keeping only what can still be
// handed out.
func (f *Framer) add(p []byte) {
	if room := f.limit - len(f.buf); room > 0 {
		f.buf = append(f.buf, p[:min(room, len(p))]...)
	}
	if f.n <= f.limit {
		f.n = min(f.n+len(p), f.limit+1)
	}
}

// Reset drops a partial frame. A driver calls it when it reopens its
// device: bytes from before a disconnect and bytes after it never make one
// scan.
func (f *Framer) Reset() {
	f.buf = f.buf[:0]
	f.n = 0
	f.matched = 0
	f.inside = false
}
