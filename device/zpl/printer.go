package zpl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The defaults for the zero fields of a Config.
const (
	DefaultDialTimeout  = 3 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultReplyTimeout = 2 * time.Second
)

// maxHostStatus bounds what Status reads: a real reply is under 100 bytes.
const maxHostStatus = 1024

// Config says where a printer is. Exactly one of Addr and Device is set.
type Config struct {
	// Addr is the printer's host:port, raw TCP (port 9100 on Zebra and
	// most network printers).
	Addr string
	// Device is a printer device file, such as /dev/usb/lp0.
	Device string
	// DialTimeout bounds connecting to Addr.
	DialTimeout time.Duration
	// WriteTimeout bounds taking one job: writing it and, over TCP, the
	// printer confirming it read it.
	WriteTimeout time.Duration
	// ReplyTimeout bounds the wait for the answer to ~HS.
	ReplyTimeout time.Duration
}

// Validate reports every field of c a Printer cannot work with.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Addr != "" && c.Device != "":
		errs = append(errs, errors.New("addr and device are exclusive"))
	case c.Addr == "" && c.Device == "":
		errs = append(errs, errors.New("addr or device is required"))
	case c.Addr != "":
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr: %w", err))
		}
	case !filepath.IsAbs(c.Device):
		errs = append(errs, fmt.Errorf("device: %q is not an absolute path", c.Device))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"write_timeout", c.WriteTimeout}, {"reply_timeout", c.ReplyTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) applyDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ReplyTimeout == 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
}

// Printer sends ZPL jobs to one printer and reads its status. Its methods
// are safe for concurrent use and run one at a time: many printers serve
// one connection on port 9100 at a time.
type Printer struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// New returns a Printer for cfg, or the errors of cfg.Validate. Zero
// durations take the package defaults; log may be nil.
func New(cfg Config, log *slog.Logger) (*Printer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("zpl: %w", err)
	}
	cfg.applyDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr != "" {
		log = log.With("printer", cfg.Addr)
	} else {
		log = log.With("printer", cfg.Device)
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout}
	return &Printer{cfg: cfg, log: log, dial: d.DialContext}, nil
}

// Send writes one job to the printer. A nil return means the printer
// took the whole job; an error wrapping ErrUnreachable means it may not
// have, and the job can be sent again (a printer may then hold the start
// of the job twice; see the package comment). An ended ctx aborts Send
// with ctx's error.
func (p *Printer) Send(ctx context.Context, job []byte) error {
	if len(job) == 0 {
		return errors.New("zpl: empty job")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zpl: send: %w", err)
	}
	if p.cfg.Device != "" {
		return p.sendDevice(ctx, job)
	}
	return p.sendTCP(ctx, job)
}

// sendTCP uses one connection per job, as the CUPS socket backend does: a
// connection kept between jobs holds the printer's port against other
// hosts, and one that died while idle would swallow the next job. After
// the job it half-closes and waits for the printer to close in turn,
// which it does once it has read to the end of the stream (CUPS's
// wait-eof), and then for the printer's TCP stack to have acknowledged
// every byte: a printer that closed before reading the job closes with
// the job unacknowledged (it answers it with a reset). A printer that
// keeps the connection open is let go after WriteTimeout if its stack
// acknowledged everything.
func (p *Printer) sendTCP(ctx context.Context, job []byte) error {
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline := time.Now().Add(p.cfg.WriteTimeout)
	conn.SetDeadline(deadline)

	if n, err := conn.Write(job); err != nil {
		return p.fail(ctx, fmt.Sprintf("write (%d of %d bytes)", n, len(job)), err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return p.fail(ctx, "close write", err)
	}
	_, err = io.Copy(io.Discard, struct{ io.Reader }{conn}) // a plain read loop, for a plain error
	closed := err == nil
	if closed || errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
		n, known := waitAcked(ctx, conn, deadline)
		switch {
		case known && n == 0:
			if !closed {
				p.log.Debug("printer kept the connection open; its TCP stack acknowledged the whole job", "bytes", len(job))
			}
			return nil
		case !known && closed:
			return nil
		case known:
			err = fmt.Errorf("%d bytes not acknowledged", n)
		}
	}
	return p.fail(ctx, "wait for the printer to read the job", err)
}

// waitAcked waits until the peer acknowledged all of conn's stream, or
// deadline or ctx ends, and returns what is left; known is false where
// the platform cannot tell. It polls: no socket event reports an ACK, and
// the last one is a round trip away on a LAN.
func waitAcked(ctx context.Context, conn net.Conn, deadline time.Time) (n int, known bool) {
	wait := time.Millisecond
	for {
		if n, known = unacked(conn); !known || n == 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			return n, known
		}
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, 50*time.Millisecond)
	}
}

func (p *Printer) connect(ctx context.Context) (net.Conn, error) {
	conn, err := p.dial(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, p.fail(ctx, "dial", err)
	}
	return conn, nil
}

// fail wraps an I/O error as ErrUnreachable, or as ctx's error when ctx
// ended it.
func (p *Printer) fail(ctx context.Context, op string, err error) error {
	where := p.cfg.Addr
	if where == "" {
		where = p.cfg.Device
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("zpl: %s: %s: %w", where, op, cerr)
	}
	return fmt.Errorf("zpl: %s: %s: %w: %w", where, op, ErrUnreachable, err)
}

// sendDevice opens the device for each job, so a printer unplugged and
// plugged in again (a new device node) is found again. O_NONBLOCK keeps
// the open from hanging and lets the write take a deadline; O_CREAT is
// never given, so a missing printer is an error, not a new file.
func (p *Printer) sendDevice(ctx context.Context, job []byte) error {
	f, err := os.OpenFile(p.cfg.Device, os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return p.fail(ctx, "open", err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := f.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return p.fail(ctx, "set deadline", err)
	}
	if n, err := f.Write(job); err != nil {
		return p.fail(ctx, fmt.Sprintf("write (%d of %d bytes)", n, len(job)), err)
	}
	if err := f.Close(); err != nil {
		return p.fail(ctx, "close", err)
	}
	return nil
}

// Status sends ~HS and parses the Host Status Return. The error is nil
// when the printer is ready, a *NotReadyError (with the Status also
// returned) when it answered that it cannot print, or wraps
// ErrUnreachable, ErrNoReply or the parse error. A device file printer
// has no status: errors.ErrUnsupported.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	if p.cfg.Device != "" {
		return Status{}, fmt.Errorf("zpl: %s: status is read over TCP only: %w", p.cfg.Device, errors.ErrUnsupported)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Status{}, fmt.Errorf("zpl: status: %w", err)
	}
	conn, err := p.connect(ctx)
	if err != nil {
		return Status{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(p.cfg.ReplyTimeout))

	if _, err := conn.Write([]byte("~HS")); err != nil {
		return Status{}, p.fail(ctx, "write ~HS", err)
	}
	reply, err := readHostStatus(conn)
	if err != nil {
		if ctx.Err() != nil {
			return Status{}, fmt.Errorf("zpl: %s: status: %w", p.cfg.Addr, ctx.Err())
		}
		return Status{}, fmt.Errorf("zpl: %s: status: %w (%d bytes, then %w)", p.cfg.Addr, ErrNoReply, len(reply), err)
	}
	st, err := ParseHostStatus(reply)
	if err != nil {
		return Status{}, fmt.Errorf("zpl: %s: status: %w", p.cfg.Addr, err)
	}
	if !st.Ready() {
		return st, &NotReadyError{Status: st}
	}
	return st, nil
}

// readHostStatus reads up to the third ETX.
func readHostStatus(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, maxHostStatus))
	var out []byte
	for range 3 {
		b, err := br.ReadBytes(etx)
		out = append(out, b...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
