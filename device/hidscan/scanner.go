package hidscan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scangw/scangw/device"
)

// Protocols a HID scanner speaks, for Config.Mode.
const (
	ModeWedge  = "wedge"
	ModeHIDPOS = "hidpos"
)

// Defaults for the zero values of Config.
const (
	DefaultMode        = ModeWedge
	DefaultReadTimeout = 200 * time.Millisecond
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// readBufSize exceeds any report a scanner sends (64 bytes at most), so an
// over-long report shows as one instead of being cut to size by hidapi.
const readBufSize = 256

// queueLen is how many decoded reads may wait for a slow handler. A scan
// is small; the queue is only there so the reading goroutine keeps
// draining hidapi's 30-report buffer while the handler stores a scan.
const queueLen = 64

// Device is an open HID device as the Scanner needs it; *hid.Device from
// github.com/karalabe/hid satisfies it, and tests use a playback fake.
type Device interface {
	// ReadTimeout reads one input report into b, waiting at most ms
	// milliseconds; it returns (0, nil) on timeout. ms is always > 0:
	// hidapi takes 0 as "do not wait" and -1 as "wait forever".
	ReadTimeout(b []byte, ms int) (int, error)
	// Write sends one output report, report id first.
	Write(b []byte) (int, error)
	// Close releases the device. The Scanner calls it only from the
	// goroutine that reads, never during a read.
	Close() error
}

// Info describes a HID device (one USB interface) as enumeration sees it.
type Info struct {
	VID, PID     uint16
	Release      uint16 // bcdDevice
	Serial       string
	Manufacturer string
	Product      string
	// Path is hidapi's device path; on Linux (libusb backend) it is
	// "bus-port[.port...]:config.interface", e.g. "1-1.4:1.0", stable as
	// long as the scanner stays in the same USB port.
	Path      string
	Interface int
}

// Match selects devices; see device.Match.
type Match = device.Match

// ID is what a Match looks at.
func (i Info) ID() device.USBID {
	return device.USBID{VID: i.VID, PID: i.PID, Serial: i.Serial, Interface: i.Interface, Path: i.Path}
}

// Opener finds and opens the one device that m selects. It returns an
// error when none or several match; the Scanner retries with backoff,
// except for an error that wraps ErrUnavailable, which no retry can cure.
type Opener func(m Match) (Device, Info, error)

// Config describes one HID scanner. Zero values take the defaults.
type Config struct {
	// ID names the scanner in Reads, logs and metric labels.
	ID string
	// Match selects the device; it needs at least a vendor id or a path.
	Match Match
	// Mode is the protocol: "wedge" (keyboard, the default) or "hidpos".
	Mode string
	// Layout, Terminators and Gap configure a wedge scanner; see
	// WedgeConfig.
	Layout      string
	Terminators []string
	Gap         time.Duration
	// NoAIM is for HID POS scanners whose reports carry no AIM id.
	NoAIM bool
	// MaxScan caps a scan's length; longer scans become
	// device.ErrOversize reads. Default DefaultMaxScan.
	MaxScan int
	// Feedback holds the output report (report id first) written for
	// each signal. Nil takes DefaultFeedback(Mode); a non-nil map is used
	// as is, and a missing or empty entry writes nothing.
	Feedback map[device.Signal][]byte
	// ReadTimeout bounds how long a read blocks, and so how fast Run sees
	// its context end.
	ReadTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential, jittered delay
	// between attempts to find and open a lost device.
	MinBackoff, MaxBackoff time.Duration
	// Wake, if set, ends a reopen backoff early: a hotplug watcher sends
	// on it when a device appears, so a replugged scanner is back at once
	// rather than after up to MaxBackoff. Nil leaves the backoff alone.
	Wake <-chan struct{}
}

// DefaultFeedback returns the feedback reports used when Config.Feedback
// is nil: for HID POS, Honeywell's beeper output report (Good and Warn
// sound the good-read beep, since a warned scan is stored; Bad sounds the
// error beep); for a wedge scanner nothing, since a keyboard has no way to
// beep and the station's indicator carries the verdict.
func DefaultFeedback(mode string) map[device.Signal][]byte {
	if mode != ModeHIDPOS {
		return map[device.Signal][]byte{}
	}
	return map[device.Signal][]byte{
		device.Good: {hidposFeedbackReport, hidposGoodBeep},
		device.Warn: {hidposFeedbackReport, hidposGoodBeep},
		device.Bad:  {hidposFeedbackReport, hidposErrorBeep},
	}
}

// Validate reports every field of c that cannot work, each by its name,
// before anything is opened.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" {
		bad("id", "must be set")
	}
	if c.Match.VID == 0 && c.Match.Path == "" {
		// Without either, a scanner could grab the operator's keyboard.
		bad("match", "needs vid (with pid) or path")
	}
	if c.Match.Interface != nil && *c.Match.Interface < 0 {
		bad("match.interface", "%d is negative", *c.Match.Interface)
	}
	switch c.Mode {
	case "", ModeWedge:
		if _, err := NewWedge(c.wedgeConfig()); err != nil {
			errs = append(errs, err)
		}
	case ModeHIDPOS:
		if c.Layout != "" || len(c.Terminators) > 0 || c.Gap != 0 {
			bad("mode", "hidpos scanners take no layout, terminators or gap")
		}
	default:
		bad("mode", "%q: want %s or %s", c.Mode, ModeWedge, ModeHIDPOS)
	}
	if c.NoAIM && c.Mode != ModeHIDPOS {
		bad("no_aim", "applies to hidpos scanners only")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_timeout", c.ReadTimeout}, {"min_backoff", c.MinBackoff}, {"max_backoff", c.MaxBackoff}} {
		if d.v < 0 {
			bad(d.name, "%v is negative", d.v)
		}
	}
	if c.ReadTimeout > time.Minute {
		// hidapi takes milliseconds as a C int, and a long read delays
		// shutdown for as long.
		bad("read_timeout", "%v exceeds a minute", c.ReadTimeout)
	}
	if c.MaxScan < 0 {
		bad("max_scan", "%d is negative", c.MaxScan)
	}
	return errors.Join(errs...)
}

func (c Config) wedgeConfig() WedgeConfig {
	return WedgeConfig{Layout: c.Layout, Terminators: c.Terminators, Gap: c.Gap, MaxScan: c.MaxScan}
}

func (c *Config) applyDefaults() {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	// Copy the feedback table so a caller mutating its map cannot race
	// with Feedback.
	src := c.Feedback
	if src == nil {
		src = DefaultFeedback(c.Mode)
	}
	c.Feedback = device.CloneFeedback(src)
	c.Terminators = append([]string(nil), c.Terminators...)
	if c.Match.Interface != nil {
		i := *c.Match.Interface
		c.Match.Interface = &i
	}
}

// Scanner drives one HID scanner: it finds and opens the device, decodes
// its reports, reopens it when it is lost, and writes feedback to it.
type Scanner struct {
	cfg     Config
	log     *slog.Logger
	metrics *device.ScannerMetrics
	open    Opener
	// now stamps reports and drives the wedge gap; tests replace it.
	now func() time.Time

	running atomic.Bool
	settled atomic.Bool // the first open attempt ended

	// mu guards dev and info. Feedback writes under it, and the reading
	// goroutine clears dev under it before closing, so a write never
	// reaches a closed hidapi handle (a use after free in C).
	mu   sync.Mutex
	dev  Device
	info Info
}

// New returns a Scanner for cfg that opens real HID devices (OpenHID).
// Fields left zero take the package defaults; Run reports a config it
// cannot use. log may be nil to discard logs, m may be nil to keep no
// metrics.
func New(cfg Config, log *slog.Logger, m *device.Metrics) *Scanner {
	return NewWithOpener(cfg, log, m, OpenHID)
}

// NewWithOpener is New with another way to find devices: a simulator, or
// a playback fake in tests.
func NewWithOpener(cfg Config, log *slog.Logger, m *device.Metrics, open Opener) *Scanner {
	cfg.applyDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{
		cfg:     cfg,
		log:     log.With("scanner", cfg.ID, "match", cfg.Match.String()),
		metrics: m.Scanner(cfg.ID, "decode", "oversize", "overrun"),
		open:    open,
		now:     time.Now,
	}
}

// ID returns the configured scanner id.
func (s *Scanner) ID() string { return s.cfg.ID }

// Settled reports whether Run's first attempt to open the device ended,
// opened or failed (see device.Reopen.Settled).
func (s *Scanner) Settled() bool { return s.settled.Load() }

// Connected reports whether the device is open right now.
func (s *Scanner) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dev != nil
}

// Device returns the open device's description, and false while none is
// open.
func (s *Scanner) Device() (Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info, s.dev != nil
}

// SignalsVerdict reports whether Feedback reaches the operator through the
// scanner itself, which is so when output reports are configured for Good
// and Bad (HID POS by default). When it is false, as for keyboard-wedge
// scanners that beep on decode by themselves, the station's indicator must
// carry the durable verdict.
func (s *Scanner) SignalsVerdict() bool {
	return len(s.cfg.Feedback[device.Good]) > 0 && len(s.cfg.Feedback[device.Bad]) > 0
}

// Feedback writes the output report configured for sig to the scanner. It
// returns device.ErrNotConnected while the device is not open, even when
// sig has no report configured, so a caller always learns that the
// scanner is away. It is safe to call from the handler passed to Run and
// from other goroutines.
func (s *Scanner) Feedback(sig device.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev == nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, device.ErrNotConnected)
	}
	b := s.cfg.Feedback[sig]
	if len(b) == 0 {
		return nil
	}
	// A HID write is one whole report or nothing, so there is no partial
	// write to resume. hidapi gives up after a second; holding mu that
	// long delays at most the reader's close of a device that is going
	// away anyway.
	n, err := s.dev.Write(b)
	if err != nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, err)
	}
	if n != len(b) {
		return fmt.Errorf("feedback %s to %s: wrote %d of %d bytes", sig, s.cfg.ID, n, len(b))
	}
	return nil
}

// Run finds and opens the device, decodes its reports and calls handle for
// each scan, synchronously and in order, with a fresh copy of the scan's
// bytes. When the device fails or disappears it closes it and looks for it
// again with backoff, until ctx ends; then it returns nil. Scans decoded
// before ctx ended are still handed over. Run returns an error only for a
// config it cannot use, when it is already running, or when HID is
// unavailable in this build (ErrUnavailable).
func (s *Scanner) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("hid scanner %q: %w", s.cfg.ID, err)
	}
	if handle == nil {
		return fmt.Errorf("hid scanner %q: nil handler", s.cfg.ID)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("hid scanner %q: already running", s.cfg.ID)
	}
	defer s.running.Store(false)

	dec, err := s.newDecoder()
	if err != nil {
		return fmt.Errorf("hid scanner %q: %w", s.cfg.ID, err)
	}
	// Decoding happens on the reading goroutine, handling on this one:
	// see queueLen.
	reads := make(chan device.Read, queueLen)
	done := make(chan error, 1)
	go func() {
		defer close(reads)
		done <- s.readLoop(ctx, dec, reads)
	}()
	for rd := range reads {
		handle(ctx, rd)
	}
	return <-done
}

// decoder is what the read loop needs from either protocol's decoder.
type decoder interface {
	Report(r []byte, at time.Time, emit func(Scan))
	Flush(now time.Time, emit func(Scan))
	Deadline() (time.Time, bool)
	Abort(reason string, emit func(Scan))
	Reset()
}

func (s *Scanner) newDecoder() (decoder, error) {
	if s.cfg.Mode == ModeHIDPOS {
		return hidposReader{NewHIDPOS(HIDPOSConfig{NoAIM: s.cfg.NoAIM, MaxScan: s.cfg.MaxScan})}, nil
	}
	return NewWedge(s.cfg.wedgeConfig())
}

// hidposReader adapts a HIDPOSDecoder to the read loop: HID POS scans end
// by their own flag, never by time.
type hidposReader struct{ *HIDPOSDecoder }

func (hidposReader) Flush(time.Time, func(Scan)) {}
func (hidposReader) Deadline() (time.Time, bool) { return time.Time{}, false }

// readLoop opens, reads and reopens until ctx ends. It returns nil then,
// or an error that retrying cannot cure.
func (s *Scanner) readLoop(ctx context.Context, dec decoder, reads chan<- device.Read) error {
	emit := func(sc Scan) { s.deliver(sc, reads) }
	buf := make([]byte, readBufSize)
	r := device.Reopen{What: "scanner", Log: s.log, Metrics: s.metrics,
		MinBackoff: s.cfg.MinBackoff, MaxBackoff: s.cfg.MaxBackoff, Wake: s.cfg.Wake,
		Settled: func() { s.settled.Store(true) }}
	open := func() (device.Session, error) {
		dev, info, err := s.open(s.cfg.Match)
		if err != nil {
			return device.Session{}, err
		}
		// Keyboard state and partial scans from before an outage mean
		// nothing after it: a replugged keyboard starts with no keys down.
		// Connected before Settled: ready means the device is in use.
		dec.Reset()
		s.setDev(dev, info)
		use := func(ctx context.Context) error {
			err := s.readDevice(ctx, dev, dec, buf, emit)
			s.setDev(nil, Info{})
			if cerr := dev.Close(); cerr != nil {
				s.log.Debug("close scanner", "err", cerr)
			}
			// A scan cut short is still reported, as bad, so no operator
			// waits for a verdict that never comes. hidapi's libusb
			// backend has no error text: an unplug is the usual cause.
			if ctx.Err() != nil {
				dec.Abort("gateway stopped mid-scan", emit)
			} else {
				dec.Abort("scanner lost mid-scan", emit)
			}
			return err
		}
		return device.Session{Use: use, Attrs: []any{"path", info.Path, "product", info.Product}}, nil
	}
	err := r.Run(ctx, open, func(err error) bool { return errors.Is(err, ErrUnavailable) })
	if err != nil {
		return fmt.Errorf("hid scanner %q: %w", s.cfg.ID, err)
	}
	return nil
}

// readDevice reads reports until the device fails or ctx ends; it returns
// the read error, or nil when ctx ended.
func (s *Scanner) readDevice(ctx context.Context, dev Device, dec decoder, buf []byte, emit func(Scan)) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := s.now()
		dec.Flush(now, emit)
		wait := s.cfg.ReadTimeout
		if dl, ok := dec.Deadline(); ok {
			// Wake up when the wedge gap ends a scan, not a read
			// timeout later.
			wait = min(wait, dl.Sub(now))
		}
		n, err := dev.ReadTimeout(buf, timeoutMillis(wait))
		if n > 0 {
			dec.Report(buf[:min(n, len(buf))], s.now(), emit)
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
}

// timeoutMillis rounds d up to whole milliseconds, at least one: hidapi
// reads 0 as "return at once", which would spin, and -1 as "block
// forever", which would keep a closed context waiting for the next scan.
func timeoutMillis(d time.Duration) int {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return int(max(ms, 1))
}

// deliver turns a decoded scan into a Read and queues it for the handler.
func (s *Scanner) deliver(sc Scan, reads chan<- device.Read) {
	rd := device.Read{
		Scanner:   s.cfg.ID,
		Data:      append([]byte(nil), sc.Data...),
		Symbology: sc.Symbology,
		Time:      sc.Time,
		Err:       sc.Err,
	}
	switch {
	case sc.Err == nil:
		s.metrics.Reads.Inc()
	case errors.Is(sc.Err, device.ErrOversize):
		s.metrics.Errors["oversize"].Inc()
	default:
		s.metrics.Errors["decode"].Inc()
		s.log.Debug("damaged scan", "err", sc.Err)
	}
	select {
	case reads <- rd:
	default:
		// Blocking here would stall the reads, and hidapi would drop
		// reports instead: a lost key-up merges two equal characters
		// into one, silently. A lost scan is counted.
		s.metrics.Errors["overrun"].Inc()
		s.log.Warn("handler too slow; scan dropped", "queued", queueLen)
	}
}

func (s *Scanner) setDev(d Device, info Info) {
	s.mu.Lock()
	s.dev, s.info = d, info
	s.mu.Unlock()
	if d != nil {
		s.metrics.Connected.Set(1)
	} else {
		s.metrics.Connected.Set(0)
	}
}
