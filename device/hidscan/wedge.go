package hidscan

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/scangw/scangw/device"
)

// Defaults for the zero values of WedgeConfig.
const (
	DefaultLayout = "us"
	// DefaultGap ends a scan that has no terminator. Scanners send a
	// scan's keys within a few milliseconds of each other unless set up
	// with an inter-character delay, and Honeywell's longest such delay
	// is below this; an operator cannot scan twice within it.
	DefaultGap = 300 * time.Millisecond
	// DefaultMaxScan caps a scan's length, as serialscan does.
	DefaultMaxScan = 8192
)

// Terminator names for WedgeConfig.Terminators.
const (
	TermEnter = "enter" // Enter or keypad Enter
	TermTab   = "tab"
	TermNone  = "none" // no terminator: only the gap ends a scan
)

// bootReportLen is the size of a boot protocol keyboard input report
// (HID 1.11, appendix B.1), which keyboard-wedge scanners send.
const bootReportLen = 8

// WedgeConfig configures a WedgeDecoder. Zero values take the defaults.
type WedgeConfig struct {
	// Layout is the keyboard layout the scanner is set up for: one of
	// Layouts(). Default "us".
	Layout string
	// Terminators are the keys that end a scan: "enter", "tab", or just
	// "none". Default: enter. A terminator key that is not configured
	// types its character (CR, TAB) into the scan.
	Terminators []string
	// Gap ends a scan after this long without a key. Zero means
	// DefaultGap; negative disables it, so only a terminator ends a scan.
	Gap time.Duration
	// MaxScan caps a scan's length in bytes; a longer scan is delivered
	// once, cut, with device.ErrOversize.
	MaxScan int
}

// Scan is one scan a decoder completed.
type Scan struct {
	// Data is the scan's bytes without terminator: UTF-8 text for a
	// wedge scanner, whatever the symbol holds for HID POS. It is only
	// valid during the emit call; the decoder reuses its memory.
	Data []byte
	// Symbology is the AIM identifier HID POS reports out of band, "" if
	// unknown.
	Symbology string
	// Time is when the scan's last report arrived.
	Time time.Time
	// Err is set when the scan is damaged: a *DecodeError, or
	// device.ErrOversize. Data then holds what was kept.
	Err error
}

// DecodeError says why reports could not be turned into a scan faithfully.
// The station shows it as the reason of a bad read.
type DecodeError struct {
	Reason string
}

func (e *DecodeError) Error() string { return "hid decode: " + e.Reason }

// WedgeDecoder turns keyboard-wedge boot reports into scans. It keeps the
// keyboard state between reports; it is not safe for concurrent use (one
// reading goroutine owns it).
type WedgeDecoder struct {
	layout   *layout
	termEnt  bool
	termTab  bool
	gap      time.Duration
	maxScan  int
	prevKeys [6]byte // keys down in the last accepted report
	caps     bool

	// dead is a dead key waiting for the next character.
	dead rune
	// Alt+keypad code state: Windows collects the digits typed while
	// Alt is down and types the character when Alt is released.
	altDown   bool
	altDigits int
	altCode   int
	altZero   bool // the code started with 0: ANSI (cp1252) rather than OEM (cp437)

	buf     []byte
	pending bool // a scan has started: something was typed or went wrong
	last    time.Time
	err     error
}

// NewWedge returns a decoder for cfg, or an error naming the bad field.
func NewWedge(cfg WedgeConfig) (*WedgeDecoder, error) {
	if cfg.Layout == "" {
		cfg.Layout = DefaultLayout
	}
	l, ok := layouts[cfg.Layout]
	if !ok {
		return nil, fmt.Errorf("layout %q: want one of %s", cfg.Layout, strings.Join(Layouts(), ", "))
	}
	d := &WedgeDecoder{layout: l, gap: cfg.Gap, maxScan: cfg.MaxScan}
	if d.gap == 0 {
		d.gap = DefaultGap
	}
	if d.maxScan <= 0 {
		d.maxScan = DefaultMaxScan
	}
	terms := cfg.Terminators
	if len(terms) == 0 {
		terms = []string{TermEnter}
	}
	none := false
	for _, t := range terms {
		switch strings.ToLower(t) {
		case TermEnter:
			d.termEnt = true
		case TermTab:
			d.termTab = true
		case TermNone:
			none = true
		default:
			return nil, fmt.Errorf("terminators: unknown %q: want %s, %s or %s", t, TermEnter, TermTab, TermNone)
		}
	}
	if none && (d.termEnt || d.termTab) {
		return nil, fmt.Errorf("terminators: %q cannot be combined with others", TermNone)
	}
	if none && d.gap < 0 {
		return nil, errors.New("terminators: none and a disabled gap would never end a scan")
	}
	d.buf = make([]byte, 0, 64)
	return d, nil
}

// Report feeds one input report received at time at, and calls emit for
// every scan it completes, in order. A report that is not a boot keyboard
// report, a key the layout cannot type or an over-long scan never stops
// the decoder: the scan in progress is marked damaged and still ends at
// its terminator or gap, so the operator gets one bad read for it.
//
// Before the report is applied, a scan whose last report is at least the gap
// older than at is completed, as Flush would have done.
func (d *WedgeDecoder) Report(r []byte, at time.Time, emit func(Scan)) {
	d.Flush(at, emit)
	if len(r) != bootReportLen {
		d.fail(at, fmt.Sprintf("keyboard report of %d bytes, want %d", len(r), bootReportLen))
		return
	}
	keys := r[2:8]
	for _, k := range keys {
		if k >= keyErrorRollOver && k <= keyErrorUndef {
			// The keyboard's phantom state: it could not tell which
			// keys are down (HID 1.11, appendix C). Keys may be lost.
			d.fail(at, "keyboard reported a rollover error")
			return
		}
	}
	if d.pending {
		// The gap is silence on the wire: a key release is activity
		// too.
		d.last = at
	}
	mods := r[0]
	d.altChange(mods, at, emit)
	for i, k := range keys {
		// A key counts in the report where it first appears: that is a
		// press. Still being listed is holding it, so "AA" needs a
		// report without A in between.
		if k == 0 || containsKey(d.prevKeys[:], k) || containsKey(keys[:i], k) {
			continue
		}
		d.press(k, mods, at, emit)
	}
	copy(d.prevKeys[:], keys)
}

func containsKey(keys []byte, k byte) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// Flush completes a pending scan if its last report is at least the gap older
// than now. The reading loop calls it when a read times out.
func (d *WedgeDecoder) Flush(now time.Time, emit func(Scan)) {
	if d.pending && d.gap > 0 && now.Sub(d.last) >= d.gap {
		d.complete(emit)
	}
}

// Deadline returns when Flush will complete the pending scan, and false if
// nothing is pending or the gap is disabled.
func (d *WedgeDecoder) Deadline() (time.Time, bool) {
	if !d.pending || d.gap <= 0 {
		return time.Time{}, false
	}
	return d.last.Add(d.gap), true
}

// Abort ends a pending scan as damaged with reason, whatever its gap: the
// driver calls it when the device is lost mid-scan, so the operator of a
// wedge scanner, which already beeped, sees a bad read instead of nothing.
func (d *WedgeDecoder) Abort(reason string, emit func(Scan)) {
	if d.pending {
		d.damage(reason)
		d.complete(emit)
	}
}

// Reset forgets all state, as a freshly plugged keyboard has none.
func (d *WedgeDecoder) Reset() {
	*d = WedgeDecoder{layout: d.layout, termEnt: d.termEnt, termTab: d.termTab, gap: d.gap, maxScan: d.maxScan, buf: d.buf[:0]}
}

// altHeld tells whether mods hold the Alt that starts an Alt+keypad code:
// Left Alt, or Right Alt where it is not AltGr; Ctrl+Alt is AltGr or a
// shortcut, never a code.
func (d *WedgeDecoder) altHeld(mods byte) bool {
	if mods&modCtrl != 0 {
		return false
	}
	return mods&modLAlt != 0 || (!d.layout.altGr && mods&modRAlt != 0)
}

// altChange starts or finishes an Alt+keypad code as Alt goes down or up.
func (d *WedgeDecoder) altChange(mods byte, at time.Time, emit func(Scan)) {
	held := d.altHeld(mods)
	switch {
	case held && !d.altDown:
		d.altDown, d.altDigits, d.altCode, d.altZero = true, 0, 0, false
	case !held && d.altDown:
		d.altDown = false
		if d.altDigits > 0 {
			d.typeAltCode(at)
		}
	}
}

// typeAltCode types the character of a finished Alt+keypad code. Windows
// takes the code modulo 256; codes with a leading zero index the ANSI code
// page (cp1252), others the OEM one (cp437). Both agree with ASCII below
// 128, which is where scanners' codes for controls such as GS (Alt+0029)
// live.
func (d *WedgeDecoder) typeAltCode(at time.Time) {
	b := byte(d.altCode % 256)
	switch {
	case b == 0:
		d.fail(at, "Alt+keypad code 0 types nothing")
	case b < 0x80:
		d.typeByte(b, at)
	default:
		var r rune
		if d.altZero {
			r = charmap.Windows1252.DecodeByte(b)
		} else {
			r = charmap.CodePage437.DecodeByte(b)
		}
		if r == utf8.RuneError {
			d.fail(at, fmt.Sprintf("Alt+keypad code %d is undefined in cp1252", d.altCode))
			return
		}
		d.typeRune(r, at)
	}
}

// press applies one key press.
func (d *WedgeDecoder) press(k, mods byte, at time.Time, emit func(Scan)) {
	if d.pressState(k) {
		return
	}
	if d.altDown {
		d.pressAltCode(k, at)
		return
	}
	if mods&modGUI != 0 {
		d.fail(at, fmt.Sprintf("GUI+key 0x%02x is a shortcut, not a character", k))
		return
	}
	altGr := d.layout.altGr && (mods&modRAlt != 0 || (mods&modCtrl != 0 && mods&modLAlt != 0))
	if mods&modCtrl != 0 && !altGr {
		d.pressCtrl(k, at)
		return
	}
	// Keys whose meaning does not come from the layout's key map: the
	// terminators, the control keys and the keypad.
	switch k {
	case keyEnter, keyKPEnter:
		if d.termEnt {
			d.terminate(at, emit)
			return
		}
		d.typeByte('\r', at)
		return
	case keyTab:
		if d.termTab {
			d.terminate(at, emit)
			return
		}
		d.typeByte('\t', at)
		return
	case keyEscape:
		d.typeByte(0x1B, at)
		return
	case keyBackspace:
		d.typeByte(0x08, at)
		return
	case keyDelete:
		d.typeByte(0x7F, at)
		return
	case keyKPDecimal:
		d.typeRune(d.layout.kpDecimal, at)
		return
	case keyKPEqual:
		d.typeRune('=', at)
		return
	}
	if k >= keyKPSlash && k < keyKPEnter {
		d.typeRune(rune("/*-+"[k-keyKPSlash]), at)
		return
	}
	if digit, ok := keypadDigit(k); ok {
		d.typeRune(rune('0'+digit), at)
		return
	}
	d.pressLayout(k, mods, altGr, at)
}

// pressState applies a key that changes the keyboard's state but types
// nothing, and reports whether k was one.
func (d *WedgeDecoder) pressState(k byte) bool {
	switch {
	case k >= keyLeftCtrl && k <= keyRightGUI:
		// Some devices list modifier keys in the key array too; the
		// modifier byte already says all there is.
		return true
	case k == keyCapsLock:
		d.caps = !d.caps
		return true
	case k == keyNumLock || k == keyScrollLock:
		// Scanners that type on the keypad assume Num Lock is on and
		// toggle it themselves from the host's LED report, which a
		// gateway never sends: the keypad is read as digits regardless.
		return true
	}
	return false
}

// pressAltCode applies a key pressed while Alt is held: a keypad digit
// of an Alt+keypad code, or a shortcut.
func (d *WedgeDecoder) pressAltCode(k byte, at time.Time) {
	if digit, ok := keypadDigit(k); ok {
		if d.altDigits == 0 && digit == 0 {
			d.altZero = true
		}
		d.altDigits++
		// Bounded so that a long run of digits cannot overflow:
		// only the code modulo 256 matters.
		d.altCode = (d.altCode*10 + digit) % 1000
		d.pending, d.last = true, at
		return
	}
	d.fail(at, fmt.Sprintf("Alt+key 0x%02x is a shortcut, not a character", k))
}

// pressLayout types the character the layout gives key k at the shift
// level of mods, Caps Lock and AltGr, holding it back if it is a dead key.
func (d *WedgeDecoder) pressLayout(k, mods byte, altGr bool, at time.Time) {
	l := d.layout
	if int(k) >= numUsages {
		d.fail(at, fmt.Sprintf("key 0x%02x types no character", k))
		return
	}
	def := &l.keys[k]
	shift := mods&modShift != 0
	if def.caps && d.caps {
		shift = !shift
	}
	lv := lvlBase
	if shift {
		lv = lvlShift
	}
	if altGr {
		lv += lvlAltGr
	}
	r := def.r[lv]
	if r == 0 {
		d.fail(at, fmt.Sprintf("key 0x%02x types no character in layout %s", k, l.name))
		return
	}
	if def.dead&(1<<lv) != 0 {
		if d.dead != 0 {
			// Two dead keys: Windows types the first and keeps the
			// second waiting.
			d.typeRune(d.dead, at)
		}
		d.dead = r
		d.pending, d.last = true, at
		return
	}
	if d.dead != 0 && k == keySpace {
		// Dead key then space types the accent itself: that is how a
		// scanner sends "^" on a German layout.
		dead := d.dead
		d.dead = 0
		d.typeRune(dead, at)
		return
	}
	d.typeRune(r, at)
}

// pressCtrl types the control character of Ctrl+k: Ctrl with a letter key
// types 0x01-0x1A for a-z in the scanner's layout (so Ctrl+A is the AZERTY
// A key), and a few punctuation keys type the rest by position.
func (d *WedgeDecoder) pressCtrl(k byte, at time.Time) {
	if int(k) < numUsages {
		if r := d.layout.keys[k].r[lvlBase]; r >= 'a' && r <= 'z' {
			d.typeByte(byte(r-'a'+1), at)
			return
		}
	}
	if b, ok := ctrlPositional[k]; ok {
		d.typeByte(b, at)
		return
	}
	d.fail(at, fmt.Sprintf("Ctrl+key 0x%02x is a shortcut, not a character", k))
}

func keypadDigit(k byte) (int, bool) {
	switch {
	case k >= keyKP1 && k < keyKP0:
		return int(k-keyKP1) + 1, true
	case k == keyKP0:
		return 0, true
	}
	return 0, false
}

// typeRune appends r, first resolving a waiting dead key.
func (d *WedgeDecoder) typeRune(r rune, at time.Time) {
	if d.dead != 0 {
		dead := d.dead
		d.dead = 0
		if c, ok := compose(dead, r); ok {
			r = c
		} else {
			d.appendRune(dead)
		}
	}
	d.appendRune(r)
	d.pending, d.last = true, at
}

// typeByte appends a single-byte character (ASCII, including controls).
func (d *WedgeDecoder) typeByte(b byte, at time.Time) {
	d.typeRune(rune(b), at)
}

func (d *WedgeDecoder) appendRune(r rune) {
	if len(d.buf)+utf8.RuneLen(r) > d.maxScan {
		if d.err == nil {
			d.err = device.ErrOversize
		}
		return
	}
	d.buf = utf8.AppendRune(d.buf, r)
}

// fail marks the scan in progress as damaged, starting one if none is: a
// report that cannot be decoded most likely belongs to a scan, and that
// scan's operator needs a bad read.
func (d *WedgeDecoder) fail(at time.Time, reason string) {
	d.damage(reason)
	d.pending, d.last = true, at
}

// damage keeps the first reason: later ones are usually its consequences.
func (d *WedgeDecoder) damage(reason string) {
	if d.err == nil {
		d.err = &DecodeError{Reason: reason}
	}
}

// terminate ends the scan at its terminator key. A terminator alone makes
// an empty scan, as in serialscan: the station rejects it visibly.
func (d *WedgeDecoder) terminate(at time.Time, emit func(Scan)) {
	d.last = at
	d.complete(emit)
}

func (d *WedgeDecoder) complete(emit func(Scan)) {
	if d.dead != 0 {
		// A dead key with nothing after it stands for itself.
		d.appendRune(d.dead)
		d.dead = 0
	}
	emit(Scan{Data: d.buf[:len(d.buf):len(d.buf)], Time: d.last, Err: d.err})
	d.buf = d.buf[:0]
	d.pending = false
	d.err = nil
}
