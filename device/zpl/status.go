package zpl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Status is a printer's answer to ~HS (Host Status Return, ZPL II
// Programming Guide). The password string 3 carries is not kept.
type Status struct {
	// String 1.

	// CommSettings is aaa, the serial port settings as bits.
	CommSettings int
	PaperOut     bool // b
	Paused       bool // c
	// LabelLength is dddd, in dots.
	LabelLength int
	// FormatsInBuffer is eee, formats received and not yet printed.
	FormatsInBuffer int
	BufferFull      bool // f: the receive buffer is full
	CommDiagnostic  bool // g: communications diagnostic mode
	PartialFormat   bool // h: a format is being received
	CorruptRAM      bool // j: configuration data lost
	UnderTemp       bool // k
	OverTemp        bool // l

	// String 2.

	// FunctionSettings is mmm, media type and sensor settings as bits.
	FunctionSettings int
	HeadOpen         bool // o: head in up position
	RibbonOut        bool // p
	ThermalTransfer  bool // q: thermal transfer mode selected
	// PrintMode is r: 0 rewind, 1 peel-off, 2 tear-off, 3 cutter, 4
	// applicator, 5 delayed cut …
	PrintMode int
	// PrintWidthMode is s.
	PrintWidthMode int
	LabelWaiting   bool // t: a label waits to be taken in peel-off mode
	// LabelsRemaining is uuuuuuuu, labels left in the batch.
	LabelsRemaining     int
	FormatWhilePrinting bool // v
	// GraphicsStored is www, graphic images in memory.
	GraphicsStored int

	// String 3.

	StaticRAM bool // y: static RAM installed
}

// Reason names what keeps the printer from printing, the condition an
// operator must clear first: "head_open", "paper_out", "ribbon_out",
// "over_temperature", "under_temperature", "buffer_full", "paused"; ""
// when it is ready. A printer pauses itself on paper out, so paused comes
// last. Corrupt RAM is no reason: the printer prints, with its defaults.
func (s Status) Reason() string {
	switch {
	case s.HeadOpen:
		return "head_open"
	case s.PaperOut:
		return "paper_out"
	case s.RibbonOut:
		return "ribbon_out"
	case s.OverTemp:
		return "over_temperature"
	case s.UnderTemp:
		return "under_temperature"
	case s.BufferFull:
		return "buffer_full"
	case s.Paused:
		return "paused"
	}
	return ""
}

// Ready reports whether the printer can print now.
func (s Status) Ready() bool { return s.Reason() == "" }

// The error classes of this package, for errors.Is.
var (
	// ErrUnreachable: a job or status request did not get through: no
	// connection, the connection lost, the device file missing, or the
	// printer not taking the bytes in time. The job was not printed, or
	// not all of it; it can be sent again.
	ErrUnreachable = errors.New("printer unreachable")
	// ErrNotReady: the printer answered but cannot print (*NotReadyError
	// says why).
	ErrNotReady = errors.New("printer not ready")
	// ErrNoReply: the printer took ~HS but sent no host status in time.
	// Either it does not speak ZPL status, or it is one of Zebra's
	// newer firmwares, which stay silent while media or ribbon is out,
	// the head is open or over temperature ("~HS", Zebra's online ZPL
	// manual).
	ErrNoReply = errors.New("printer sent no host status")
)

// NotReadyError is a printer that answered ~HS with a state it cannot
// print in.
type NotReadyError struct {
	Status Status
}

func (e *NotReadyError) Error() string { return "printer not ready: " + e.Status.Reason() }

// Is makes errors.Is(err, ErrNotReady) hold.
func (e *NotReadyError) Is(target error) bool { return target == ErrNotReady }

// ErrorReason maps an error of Send or Status to a bounded reason for a
// log field or a metric label: the Status reason of a *NotReadyError,
// "unreachable", "no_status", "canceled", "error" for any other, "" for
// nil.
func ErrorReason(err error) string {
	var nr *NotReadyError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &nr):
		return nr.Status.Reason()
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrNoReply):
		return "no_status"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// Framing of the host status strings.
const (
	stx = 0x02
	etx = 0x03
)

// ParseHostStatus parses the reply to ~HS: three strings, each framed as
// <STX>…<ETX><CR><LF>:
//
//	1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l
//	2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www
//	3: xxxx,y
//
// Flags must be 0 or 1 and numbers decimal; the widths of the numbers are
// not held to the manual's, which printers do not all keep. Fields after
// the last known one are ignored, for firmware that appends some. CR and
// LF may be missing between the strings; anything else outside them is an
// error.
func ParseHostStatus(b []byte) (Status, error) {
	var s Status
	var lines [3][][]byte
	var starts [3]int
	i := 0
	for n := range 3 {
		for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
			i++
		}
		if i >= len(b) {
			return Status{}, fmt.Errorf("zpl: host status: %d of 3 strings", n)
		}
		if b[i] != stx {
			return Status{}, fmt.Errorf("zpl: host status: string %d at offset %d: want STX, got %s", n+1, i, strconv.QuoteRune(rune(b[i])))
		}
		end := bytes.IndexByte(b[i+1:], etx)
		if end < 0 {
			return Status{}, fmt.Errorf("zpl: host status: string %d at offset %d has no ETX", n+1, i)
		}
		starts[n] = i + 1
		lines[n] = bytes.Split(b[i+1:i+1+end], []byte{','})
		i += end + 2
	}
	for ; i < len(b); i++ {
		if b[i] != '\r' && b[i] != '\n' {
			return Status{}, fmt.Errorf("zpl: host status: %s at offset %d after the third string", strconv.QuoteRune(rune(b[i])), i)
		}
	}

	p := statusParser{}
	p.line(1, lines[0], starts[0], 12)
	p.num(&s.CommSettings, "aaa (communication settings)")
	p.flag(&s.PaperOut, "b (paper out)")
	p.flag(&s.Paused, "c (pause)")
	p.num(&s.LabelLength, "dddd (label length)")
	p.num(&s.FormatsInBuffer, "eee (formats in buffer)")
	p.flag(&s.BufferFull, "f (buffer full)")
	p.flag(&s.CommDiagnostic, "g (diagnostic mode)")
	p.flag(&s.PartialFormat, "h (partial format)")
	p.num(new(int), "iii (unused)")
	p.flag(&s.CorruptRAM, "j (corrupt RAM)")
	p.flag(&s.UnderTemp, "k (under temperature)")
	p.flag(&s.OverTemp, "l (over temperature)")

	p.line(2, lines[1], starts[1], 11)
	p.num(&s.FunctionSettings, "mmm (function settings)")
	p.num(new(int), "n (unused)")
	p.flag(&s.HeadOpen, "o (head up)")
	p.flag(&s.RibbonOut, "p (ribbon out)")
	p.flag(&s.ThermalTransfer, "q (thermal transfer)")
	p.num(&s.PrintMode, "r (print mode)")
	p.num(&s.PrintWidthMode, "s (print width mode)")
	p.flag(&s.LabelWaiting, "t (label waiting)")
	p.num(&s.LabelsRemaining, "uuuuuuuu (labels remaining)")
	p.flag(&s.FormatWhilePrinting, "v (format while printing)")
	p.num(&s.GraphicsStored, "www (graphics stored)")

	p.line(3, lines[2], starts[2], 2)
	p.num(new(int), "xxxx (password)")
	p.flag(&s.StaticRAM, "y (static RAM)")
	if p.err != nil {
		return Status{}, p.err
	}
	return s, nil
}

// statusParser reads the fields of one string in order and keeps the
// first error.
type statusParser struct {
	n      int
	fields [][]byte
	pos    int // offset of the next field
	err    error
}

func (p *statusParser) line(n int, fields [][]byte, pos, want int) {
	if p.err == nil && len(fields) < want {
		p.err = fmt.Errorf("zpl: host status: string %d has %d fields, want %d", n, len(fields), want)
	}
	p.n, p.fields, p.pos = n, fields, pos
}

func (p *statusParser) next() (f []byte, pos int, ok bool) {
	if p.err != nil {
		return nil, 0, false
	}
	f, pos = p.fields[0], p.pos
	p.fields = p.fields[1:]
	p.pos += len(f) + 1
	return f, pos, true
}

func (p *statusParser) fail(name string, f []byte, pos int, want string) {
	p.err = fmt.Errorf("zpl: host status: string %d field %s at offset %d: want %s, got %q", p.n, name, pos, want, f)
}

func (p *statusParser) flag(dst *bool, name string) {
	f, pos, ok := p.next()
	if !ok {
		return
	}
	if len(f) != 1 || (f[0] != '0' && f[0] != '1') {
		p.fail(name, f, pos, "0 or 1")
		return
	}
	*dst = f[0] == '1'
}

func (p *statusParser) num(dst *int, name string) {
	f, pos, ok := p.next()
	if !ok {
		return
	}
	if len(f) == 0 || len(f) > 9 {
		p.fail(name, f, pos, "1 to 9 digits")
		return
	}
	n := 0
	for _, c := range f {
		if c < '0' || c > '9' {
			p.fail(name, f, pos, "digits")
			return
		}
		n = n*10 + int(c-'0')
	}
	*dst = n
}
