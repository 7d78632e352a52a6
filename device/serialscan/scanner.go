package serialscan

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/scangw/scangw/device"
)

// Defaults for the zero values of Config.
const (
	DefaultBaud        = 9600
	DefaultMaxFrame    = 8192
	DefaultReadTimeout = 200 * time.Millisecond
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// readBufSize bounds one read; a scan rarely exceeds it, and a longer one
// simply takes two reads, which the framer joins.
const readBufSize = 512

// Config describes one serial scanner. Zero values take the defaults above.
type Config struct {
	// ID names the scanner in Reads, logs and metric labels.
	ID string
	// Port is the device path, e.g. /dev/ttyACM0, a udev symlink, or a pty
	// slave.
	Port string
	// Baud is the line speed; USB-CDC scanners and ptys ignore it.
	Baud int
	// Frame is how the byte stream is cut into frames (the scanner's
	// configured suffix, or STX/ETX); MaxFrame defaults to
	// DefaultMaxFrame, and longer frames become device.ErrOversize reads.
	Frame device.FrameConfig
	// Codes splits a frame holding several codes and marks no-reads.
	Codes device.Codes
	// Feedback holds the bytes written for each signal (for example ACK
	// 0x06 and NAK 0x15 for a scanner in host-acknowledge mode). A missing
	// or empty entry writes nothing.
	Feedback map[device.Signal][]byte
	// ReadTimeout bounds how long a read blocks, and so how fast Run sees
	// its context end.
	ReadTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential, jittered delay
	// between attempts to reopen a lost port.
	MinBackoff, MaxBackoff time.Duration
	// Wake, if set, ends a reopen backoff early: a hotplug watcher sends
	// on it when a device appears, so a replugged scanner is back at once
	// rather than after up to MaxBackoff. Nil leaves the backoff alone.
	Wake <-chan struct{}
}

func (c *Config) applyDefaults() {
	if c.Baud <= 0 {
		c.Baud = DefaultBaud
	}
	c.Frame = c.Frame.WithDefaults(DefaultMaxFrame)
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
}

// Scanner drives one serial scanner: it owns the port, reopens it when it is
// lost, and writes feedback to it.
type Scanner struct {
	cfg     Config
	log     *slog.Logger
	metrics *device.ScannerMetrics
	// now stamps Reads; tests replace it.
	now func() time.Time

	running atomic.Bool
	settled atomic.Bool // the first open attempt ended

	// mu guards port. Feedback writes under it, and the reading goroutine
	// clears port under it before closing, so a write never reaches a
	// closed, possibly already reused, file descriptor.
	mu   sync.Mutex
	port serial.Port
}

// New returns a Scanner for cfg. Fields left zero take the package
// defaults. log may be nil to discard logs, m may be nil to keep no
// metrics.
func New(cfg Config, log *slog.Logger, m *device.Metrics) *Scanner {
	cfg.applyDefaults()
	cfg.Codes = cfg.Codes.Clone()
	cfg.Feedback = device.CloneFeedback(cfg.Feedback)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{
		cfg:     cfg,
		log:     log.With("scanner", cfg.ID, "port", cfg.Port),
		metrics: m.ScannerWithNoReads(cfg.ID, "oversize"),
		now:     time.Now,
	}
}

// ID returns the configured scanner id.
func (s *Scanner) ID() string { return s.cfg.ID }

// Settled reports whether Run's first attempt to open the port ended,
// opened and configured, or failed: a scanner that is unplugged must not
// hold the gateway's readiness back, one that is being opened must.
func (s *Scanner) Settled() bool { return s.settled.Load() }

// Connected reports whether the port is open right now.
func (s *Scanner) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port != nil
}

// Feedback writes the bytes configured for sig to the scanner. It returns
// device.ErrNotConnected while the port is not open, even when sig has no
// bytes configured, so a caller always learns that the scanner is away. It
// is safe to call from the handler passed to Run and from other goroutines.
func (s *Scanner) Feedback(sig device.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, device.ErrNotConnected)
	}
	b := s.cfg.Feedback[sig]
	// A feedback message is a few bytes against a kernel output buffer of
	// kilobytes, with flow control off, so holding mu across the write
	// does not stall the reader's close in practice.
	for len(b) > 0 {
		n, err := s.port.Write(b)
		if err != nil {
			return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, err)
		}
		b = b[n:]
	}
	return nil
}

// Run opens the port, reads frames and calls handle for each read they
// hold (a frame, or each of its codes with Config.Codes), synchronously and
// in order, with a fresh copy of the bytes. When
// the port fails or disappears it closes it and reopens it with backoff,
// until ctx ends; then it returns nil. Frames already read when ctx ends are
// still handed over: the scanner considers them sent. Run returns an error
// only for a config it cannot use, or when it is already running.
func (s *Scanner) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	if s.cfg.Port == "" {
		return fmt.Errorf("serial scanner %q: no port configured", s.cfg.ID)
	}
	if handle == nil {
		return fmt.Errorf("serial scanner %q: nil handler", s.cfg.ID)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("serial scanner %q: already running", s.cfg.ID)
	}
	defer s.running.Store(false)

	fr := device.NewFramer(s.cfg.Frame)
	buf := make([]byte, readBufSize)
	r := device.Reopen{What: "scanner port", Log: s.log, Metrics: s.metrics,
		MinBackoff: s.cfg.MinBackoff, MaxBackoff: s.cfg.MaxBackoff, Wake: s.cfg.Wake,
		Settled: func() { s.settled.Store(true) }}
	return r.Run(ctx, func() (device.Session, error) {
		port, err := s.open()
		if err != nil {
			return device.Session{}, err
		}
		// A partial frame from before an outage cannot be completed by
		// bytes after it. Connected before Settled: ready means the port
		// is configured and in use.
		fr.Reset()
		s.setPort(port)
		return device.Session{Use: func(ctx context.Context) error {
			err := s.readLoop(ctx, port, fr, buf, handle)
			s.setPort(nil)
			if cerr := port.Close(); cerr != nil {
				s.log.Debug("close scanner port", "err", cerr)
			}
			return err
		}}, nil
	}, nil)
}

// open opens and configures the port (raw, 8N1).
//
// A tty that was in cooked mode when it was opened (the first open after
// a boot or a replug) has put what arrived meanwhile through its line
// discipline: CR became LF and lines were assembled, so a frame typed
// across the open would be glued to its retransmit and stored as one scan
// that never existed. That input is dropped once the port is raw; a
// scanner in ACK/NAK mode sends the frame again, and one that is not had
// it mangled anyway. Input that arrived in raw mode (a tty left raw by
// the last open) is kept: it may be a scan nobody else will resend, and
// a stale duplicate is cheaper than a lost scan.
func (s *Scanner) open() (serial.Port, error) {
	cooked, release := holdCooked(s.cfg.Port)
	defer release()
	// InitialStatusBits stays nil: setting DTR/RTS needs modem ioctls that
	// ptys and some USB-CDC devices reject, and scanners do not need them.
	mode := &serial.Mode{
		BaudRate: s.cfg.Baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	}
	port, err := serial.Open(s.cfg.Port, mode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.cfg.Port, err)
	}
	if err := port.SetReadTimeout(s.cfg.ReadTimeout); err != nil {
		port.Close()
		return nil, fmt.Errorf("set read timeout on %s: %w", s.cfg.Port, err)
	}
	if cooked {
		if err := port.ResetInputBuffer(); err != nil {
			port.Close()
			return nil, fmt.Errorf("flush input of %s: %w", s.cfg.Port, err)
		}
		s.log.Debug("input that arrived in cooked mode dropped at open")
	}
	return port, nil
}

// readLoop reads until the port fails or ctx ends; it returns the read
// error, or nil when ctx ended.
func (s *Scanner) readLoop(ctx context.Context, port serial.Port, fr *device.Framer, buf []byte, handle func(context.Context, device.Read)) error {
	deliver := func(rd device.Read) {
		s.metrics.Count(rd)
		handle(ctx, rd)
	}
	var chunk []device.Read
	collect := func(rd device.Read) { chunk = append(chunk, rd) }
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, err := port.Read(buf)
		if n > 0 {
			// The chunk that carries a terminator is when the frame
			// completed; one stamp per read is as precise as the
			// kernel's buffering allows.
			t := s.now()
			fr.Push(buf[:n], func(frame []byte, ferr error) {
				base := device.Read{Scanner: s.cfg.ID, Time: t, Err: ferr}
				s.cfg.Codes.Reads(base, frame, collect)
			})
			device.Chunk(chunk, deliver)
			chunk = chunk[:0]
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", s.cfg.Port, err)
		}
		// (0, nil) is a read timeout: the loop's only chance to see ctx
		// end while the line is quiet.
	}
}

func (s *Scanner) setPort(p serial.Port) {
	s.mu.Lock()
	s.port = p
	s.mu.Unlock()
	if p != nil {
		s.metrics.Connected.Set(1)
	} else {
		s.metrics.Connected.Set(0)
	}
}
