package tcpscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/scangw/scangw/device"
)

// errIdle ends a connection that delivered nothing for IdleTimeout.
var errIdle = errors.New("reader sent nothing within the idle timeout")

// runConnect dials the reader and reads it, redialling through
// device.Reopen whenever the connection is lost.
func (s *Scanner) runConnect(ctx context.Context, handle func(context.Context, device.Read)) error {
	r := device.Reopen{What: "reader connection", Log: s.log, Metrics: s.metrics,
		MinBackoff: s.cfg.MinBackoff, MaxBackoff: s.cfg.MaxBackoff, Wake: s.cfg.Wake,
		FullJitter: true, Settled: func() { s.settled.Store(true) }}
	return r.Run(ctx, func() (device.Session, error) {
		conn, err := s.dial(ctx, "tcp", s.cfg.Connect)
		if err != nil {
			return device.Session{}, fmt.Errorf("dial %s: %w", s.cfg.Connect, err)
		}
		// Connected before Settled: ready means the reader is connected
		// or the first dial failed.
		s.setConn(conn)
		return device.Session{
			Attrs: []any{"remote", conn.RemoteAddr().String()},
			Use: func(ctx context.Context) error {
				err := s.serve(ctx, conn, handle)
				s.clearConn(conn)
				conn.Close()
				return err
			},
		}, nil
	}, nil)
}

// serve reads conn until it fails, falls idle or ctx ends, and hands every
// read to handle. It returns what ended the connection, nil when ctx
// ended. Each connection has its own framer: a partial frame from a lost
// connection is never completed by the next one.
func (s *Scanner) serve(ctx context.Context, conn net.Conn, handle func(context.Context, device.Read)) error {
	stop := closeOnDone(ctx, conn)
	defer stop()
	fr := device.NewFramer(s.cfg.Frame)
	buf := make([]byte, readBufSize)
	deliver := func(rd device.Read) {
		s.metrics.Count(rd)
		handle(ctx, rd)
	}
	var chunk []device.Read
	collect := func(rd device.Read) { chunk = append(chunk, rd) }
	for {
		if s.cfg.IdleTimeout > 0 {
			// Set before each read, so the time handle takes (a
			// commit, a feedback write) is not counted as silence.
			if err := conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
				return fmt.Errorf("set read deadline: %w", err)
			}
		}
		n, err := conn.Read(buf)
		if n > 0 {
			// One stamp per read: the read that completes a frame is
			// when it arrived, as precisely as the kernel's buffering
			// allows.
			t := s.now()
			fr.Push(buf[:n], func(frame []byte, ferr error) {
				s.cfg.Codes.Reads(device.Read{Scanner: s.cfg.ID, Time: t, Err: ferr}, frame, collect)
			})
			device.Chunk(chunk, deliver)
			chunk = chunk[:0]
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("read from %s: %w (%v)", conn.RemoteAddr(), errIdle, s.cfg.IdleTimeout)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("read from %s: reader closed the connection", conn.RemoteAddr())
		default:
			return fmt.Errorf("read from %s: %w", conn.RemoteAddr(), err)
		}
	}
}

// bind listens on the configured address, retrying with backoff until it
// can or ctx ends (nil then). A port held by another process, or an
// address not on this host yet (an interface that comes up late), is for
// the operator to fix, but must not stop the gateway's other scanners:
// the scanner stays down and settled meanwhile, and says why once per
// outage.
func (s *Scanner) bind(ctx context.Context) net.Listener {
	lc := net.ListenConfig{KeepAliveConfig: keepAlive()}
	delay := s.cfg.MinBackoff
	logged := false
	for {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
		if err == nil {
			return ln
		}
		if ctx.Err() != nil {
			return nil
		}
		s.settled.Store(true)
		s.metrics.Errors["io"].Inc()
		if !logged {
			s.log.Error("cannot listen for reader: check the listen address and that no other process holds the port; retrying", "err", err)
			logged = true
		}
		if !device.SleepOrWake(ctx, device.FullJitter(delay), s.cfg.Wake) {
			return nil
		}
		delay = min(2*delay, s.cfg.MaxBackoff)
	}
}

// runListen binds the listen address and serves the readers that connect,
// one at a time.
func (s *Scanner) runListen(ctx context.Context, handle func(context.Context, device.Read)) error {
	ln := s.bind(ctx)
	if ln == nil {
		return nil // ctx ended
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.addr.Store(a)
		defer s.addr.Store(nil)
	}
	s.settled.Store(true)
	s.log.Info("listening for reader", "addr", ln.Addr().String())
	stop := closeOnDone(ctx, ln)
	defer stop()
	defer ln.Close()
	return s.acceptLoop(ctx, ln, handle)
}

// served is an accepted connection being read by its own goroutine.
type served struct {
	conn     net.Conn
	replaced atomic.Bool // closed because a new connection took its place
	done     chan struct{}
}

// end closes the connection and waits until its reads are over: the next
// connection's frames come after all of this one's.
func (sv *served) end() {
	if sv == nil {
		return
	}
	sv.replaced.Store(true)
	sv.conn.Close()
	<-sv.done
}

// acceptLoop accepts readers until ctx ends; each new one replaces the
// one before.
func (s *Scanner) acceptLoop(ctx context.Context, ln net.Listener, handle func(context.Context, device.Read)) error {
	var cur *served
	defer func() { cur.end() }()
	var lastRefused netip.Addr
	delay, connects := s.cfg.MinBackoff, 0
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Out of file descriptors and the like: back off rather
			// than spin.
			s.metrics.Errors["io"].Inc()
			s.log.Warn("cannot accept reader connection", "err", err)
			if !device.Sleep(ctx, device.FullJitter(delay)) {
				return nil
			}
			delay = min(2*delay, s.cfg.MaxBackoff)
			continue
		}
		delay = s.cfg.MinBackoff
		if !s.allowed(conn, &lastRefused) {
			continue
		}
		remote := conn.RemoteAddr().String()
		if cur != nil {
			s.log.Info("reader connection replaced by a new one", "old", cur.conn.RemoteAddr().String(), "remote", remote)
			cur.end()
		}
		if connects++; connects > 1 {
			s.metrics.Reconnects.Inc()
			s.log.Info("reader reconnected", "remote", remote)
		} else {
			s.log.Info("reader connected", "remote", remote)
		}
		s.setConn(conn)
		cur = &served{conn: conn, done: make(chan struct{})}
		go s.serveAccepted(ctx, cur, handle)
	}
}

func (s *Scanner) serveAccepted(ctx context.Context, sv *served, handle func(context.Context, device.Read)) {
	defer close(sv.done)
	err := s.serve(ctx, sv.conn, handle)
	// Judged at once: end sets replaced before it closes the connection,
	// so a serve ended by a replacement always sees it.
	if ctx.Err() == nil && !sv.replaced.Load() {
		s.metrics.Errors["io"].Inc()
		s.log.Warn("reader connection lost; waiting for the reader to connect again", "err", err)
	}
	s.clearConn(sv.conn)
	sv.conn.Close()
}

// allowed reports whether conn's peer may connect, and closes conn when it
// may not. Only a change of refused peer is logged at warn: a reader that
// is refused retries every few seconds, and the log must stay readable.
func (s *Scanner) allowed(conn net.Conn, lastRefused *netip.Addr) bool {
	if len(s.cfg.Allow) == 0 {
		return true
	}
	var peer netip.Addr
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d,
		// which no IPv4 prefix contains; Contains also refuses zones.
		peer = a.AddrPort().Addr().Unmap().WithZone("")
	}
	for _, p := range s.cfg.Allow {
		if p.Contains(peer) {
			return true
		}
	}
	conn.Close()
	s.metrics.Errors["refused"].Inc()
	if peer != *lastRefused {
		s.log.Warn("reader connection refused: peer not in allow", "remote", conn.RemoteAddr().String())
		*lastRefused = peer
	} else {
		s.log.Debug("reader connection refused: peer not in allow", "remote", conn.RemoteAddr().String())
	}
	return false
}

// closeOnDone closes c when ctx ends, which ends a blocked Read or Accept.
// The returned stop undoes that, or waits for a close already under way,
// so nothing it started outlives the caller.
func closeOnDone(ctx context.Context, c io.Closer) (stop func()) {
	done := make(chan struct{})
	unregister := context.AfterFunc(ctx, func() {
		c.Close()
		close(done)
	})
	return func() {
		if !unregister() {
			<-done
		}
	}
}
