package tcpscan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scangw/scangw/device"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxFrame     = 8192
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 2 * time.Second
	DefaultMinBackoff   = 200 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
)

// TCP keepalive on every reader connection: a dead peer is noticed about
// keepAliveIdle + keepAliveCount*keepAliveInterval (25 s) after it went
// silent, where the kernel's default would take over two hours.
const (
	keepAliveIdle     = 10 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// readBufSize bounds one read; a result rarely exceeds it, and a longer one
// takes two reads, which the framer joins.
const readBufSize = 4096

// Config describes one TCP reader. Zero values take the defaults above.
type Config struct {
	// ID names the scanner in Reads, logs and metric labels.
	ID string
	// Connect is the reader's host:port: the gateway dials it. Exactly
	// one of Connect and Listen is set.
	Connect string
	// Listen is the addr:port the gateway listens on for the reader to
	// connect to.
	Listen string
	// Allow, when not empty, lists the networks a reader may connect
	// from in Listen mode; other peers are refused and logged.
	Allow []netip.Prefix
	// Frame says how the stream is cut into frames; an empty Terminator
	// without STXETX takes device.DefaultTerminator, MaxFrame 0 takes
	// DefaultMaxFrame.
	Frame device.FrameConfig
	// Codes splits a frame holding several codes and marks no-reads.
	Codes device.Codes
	// Feedback holds the bytes written for each signal (a reader's
	// host-acknowledge or output command). A missing or empty entry
	// writes nothing.
	Feedback map[device.Signal][]byte
	// IdleTimeout, when positive, ends a connection that delivered no
	// bytes for that long, as dead: Connect redials, Listen waits for
	// the reader to connect again.
	IdleTimeout time.Duration
	// DialTimeout bounds one dial in Connect mode.
	DialTimeout time.Duration
	// WriteTimeout bounds one Feedback write.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential, jittered delay
	// between dials of a lost reader (and after a failed accept).
	MinBackoff, MaxBackoff time.Duration
	// Wake, if set, ends a redial backoff early.
	Wake <-chan struct{}
}

func (c *Config) applyDefaults() {
	c.Frame = c.Frame.WithDefaults(DefaultMaxFrame)
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	c.IdleTimeout = max(c.IdleTimeout, 0)
}

// Validate reports every field of c a Scanner cannot work with.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Connect != "" && c.Listen != "":
		errs = append(errs, errors.New("connect and listen are exclusive"))
	case c.Connect == "" && c.Listen == "":
		errs = append(errs, errors.New("connect or listen is required"))
	case c.Connect != "":
		if _, _, err := net.SplitHostPort(c.Connect); err != nil {
			errs = append(errs, fmt.Errorf("connect: %w", err))
		}
	default:
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen: %w", err))
		}
	}
	if len(c.Allow) > 0 && c.Listen == "" {
		errs = append(errs, errors.New("allow is for listen"))
	}
	if err := c.Frame.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Scanner drives one TCP reader: it owns the connection (dialled or
// accepted), replaces it when it is lost, and writes feedback to it.
type Scanner struct {
	cfg     Config
	log     *slog.Logger
	metrics *device.ScannerMetrics
	// now stamps Reads, dial opens a connection; tests replace them.
	now  func() time.Time
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	running atomic.Bool
	settled atomic.Bool
	addr    atomic.Pointer[net.TCPAddr] // the bound listen address

	// mu guards conn. Feedback writes under it; the reading side clears
	// conn under it before closing, so feedback meant for a reader never
	// goes to the connection that replaced it.
	mu   sync.Mutex
	conn net.Conn
}

// New returns a Scanner for cfg. Fields left zero take the package
// defaults; a config Validate rejects makes Run fail. log may be nil to
// discard logs, m may be nil to keep no metrics.
func New(cfg Config, log *slog.Logger, m *device.Metrics) *Scanner {
	cfg.applyDefaults()
	cfg.Codes = cfg.Codes.Clone()
	cfg.Allow = append([]netip.Prefix(nil), cfg.Allow...)
	cfg.Feedback = device.CloneFeedback(cfg.Feedback)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen != "" {
		log = log.With("scanner", cfg.ID, "listen", cfg.Listen)
	} else {
		log = log.With("scanner", cfg.ID, "connect", cfg.Connect)
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAliveConfig: keepAlive()}
	return &Scanner{
		cfg:     cfg,
		log:     log,
		metrics: m.ScannerWithNoReads(cfg.ID, "oversize", "refused"),
		now:     time.Now,
		dial:    d.DialContext,
	}
}

func keepAlive() net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount}
}

// ID returns the configured scanner id.
func (s *Scanner) ID() string { return s.cfg.ID }

// Settled reports whether the scanner is as ready as it will get without
// the reader: in Connect mode once the first dial ended, connected or
// failed; in Listen mode once the address is bound, since a reader that
// never connects must not hold the gateway's readiness back.
func (s *Scanner) Settled() bool { return s.settled.Load() }

// Connected reports whether a reader is connected right now.
func (s *Scanner) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// Addr returns the address Run listens on in Listen mode (the port chosen
// for ":0"), or nil while it is not listening.
func (s *Scanner) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return a
	}
	return nil
}

// Feedback writes the bytes configured for sig to the connected reader. It
// returns device.ErrNotConnected while no reader is connected, even when
// sig has no bytes configured, so a caller always learns that the reader
// is away. It is safe to call from the handler passed to Run and from
// other goroutines; a write takes at most WriteTimeout.
func (s *Scanner) Feedback(sig device.Signal) error {
	// The write happens outside the lock: a slow reader must not hold up
	// Connected (status, heartbeats) or a replacement connection. A
	// net.Conn written after it was closed only fails, so the copy can
	// never reach the replacement.
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, device.ErrNotConnected)
	}
	b := s.cfg.Feedback[sig]
	if len(b) == 0 {
		return nil
	}
	if err := conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, err)
	}
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, s.cfg.ID, err)
	}
	return nil
}

// Run connects to the reader, or listens for it, reads frames and calls
// handle for each read they hold (a frame, or each of its codes with
// Config.Codes), synchronously and in order, with a fresh copy of the
// bytes. A lost connection is replaced (redialled with backoff, or
// accepted anew) until ctx ends; then Run closes everything, waits for its
// goroutines and returns nil. Frames already read when ctx ends are still
// handed over. Run returns an error for a config it cannot use, or when it
// is already running; a listen address it cannot bind is retried.
func (s *Scanner) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("tcp scanner %q: %w", s.cfg.ID, err)
	}
	if handle == nil {
		return fmt.Errorf("tcp scanner %q: nil handler", s.cfg.ID)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("tcp scanner %q: already running", s.cfg.ID)
	}
	defer s.running.Store(false)
	if s.cfg.Listen != "" {
		return s.runListen(ctx, handle)
	}
	return s.runConnect(ctx, handle)
}

func (s *Scanner) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	s.metrics.Connected.Set(1)
}

// clearConn forgets c, unless another connection has already taken its
// place.
func (s *Scanner) clearConn(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.conn = nil
		s.metrics.Connected.Set(0)
	}
}
