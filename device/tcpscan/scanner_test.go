package tcpscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/device"
)

var streamCases = []struct {
	name   string
	frame  device.FrameConfig
	codes  device.Codes
	stream string
	want   []part
}{
	{
		name:   "CR LF frames",
		frame:  device.FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 64},
		stream: "A1\r\nB2\r\n]C1\x1d0101234\r\n",
		want:   []part{{"A1", false}, {"B2", false}, {"]C1\x1d0101234", false}},
	},
	{
		name:   "STX/ETX with CR LF after ETX",
		frame:  device.FrameConfig{STXETX: true, MaxFrame: 64},
		stream: "\x02ABC\x03\r\n\x02DEF\x03\r\n",
		want:   []part{{"ABC", false}, {"DEF", false}},
	},
	{
		name:   "STX/ETX restarted by STX",
		frame:  device.FrameConfig{STXETX: true, MaxFrame: 64},
		stream: "\x02AB\x02CD\x03",
		want:   []part{{"CD", false}},
	},
	{
		name:   "prefix",
		frame:  device.FrameConfig{Terminator: []byte("\r"), Prefix: []byte("R:"), MaxFrame: 64},
		stream: "R:123\rR:456\r789\r",
		want:   []part{{"123", false}, {"456", false}, {"789", false}},
	},
	{
		name:   "NOREAD",
		frame:  device.FrameConfig{Terminator: []byte("\r")},
		codes:  device.Codes{NoRead: [][]byte{[]byte("NOREAD"), []byte("ERROR")}},
		stream: "X1\rNOREAD\rERROR\rNOREADX\r",
		want:   []part{{"X1", false}, {"NOREAD", true}, {"ERROR", true}, {"NOREADX", false}},
	},
	{
		name:   "multi-code frames with split",
		frame:  device.FrameConfig{STXETX: true},
		codes:  device.Codes{NoRead: [][]byte{[]byte("NOREAD")}, Split: []byte(",")},
		stream: "\x02A,B,C\x03\x02NOREAD,D\x03\x02,,\x03",
		want:   []part{{"A", false}, {"B", false}, {"C", false}, {"NOREAD", true}, {"D", false}},
	},
}

// TestStreams: the reader's stream, cut at every byte boundary, byte by
// byte, and all repetitions merged into one segment, yields the same
// reads, in order, on one connection, in both roles.
func TestStreams(t *testing.T) {
	for _, m := range modes {
		for _, tc := range streamCases {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Frame, cfg.Codes = tc.frame, tc.codes
				next := m.setup(t, &cfg)
				r := startRig(t, cfg, nil)
				c := next(t, r)

				reps := 0
				for cut := range len(tc.stream) + 1 {
					c.write(t, tc.stream[:cut])
					c.write(t, tc.stream[cut:])
					reps++
				}
				for i := range len(tc.stream) {
					c.write(t, tc.stream[i:i+1])
				}
				c.write(t, strings.Repeat(tc.stream, 5))
				reps += 6
				for range reps {
					r.expect(t, tc.want...)
				}

				var codes, noReads float64
				for _, w := range tc.want {
					if w.noRead {
						noReads++
					} else {
						codes++
					}
				}
				if got := r.metric(r.m.Reads.WithLabelValues("t1")); got != codes*float64(reps) {
					t.Errorf("reads = %v, want %v", got, codes*float64(reps))
				}
				if got := r.metric(r.m.NoReads.WithLabelValues("t1")); got != noReads*float64(reps) {
					t.Errorf("noreads = %v, want %v", got, noReads*float64(reps))
				}
				r.noMoreReads(t)
			})
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	cfg := baseConfig()
	cfg.Codes = device.Codes{NoRead: [][]byte{[]byte("NOREAD")}}
	cfg.Frame.MaxFrame = 6
	fr := newFakeReader(t)
	cfg.Connect = fr.addr()
	r := startRig(t, cfg, nil)
	c := fr.accept(t)
	c.write(t, "A\r\nNOREAD\r\n0123456789\r\nB\r\n")
	r.expect(t, part{"A", false}, part{"NOREAD", true})
	if rd := r.next(t); !errors.Is(rd.Err, device.ErrOversize) || string(rd.Data) != "012345" {
		t.Fatalf("third read {%q, %v}, want 012345 with ErrOversize", rd.Data, rd.Err)
	}
	r.expect(t, part{"B", false})
	want := `
# HELP scangw_device_connected 1 while the scanner's device is open.
# TYPE scangw_device_connected gauge
scangw_device_connected{scanner="t1"} 1
# HELP scangw_device_noreads_total Results in which the reader reported that it read no code.
# TYPE scangw_device_noreads_total counter
scangw_device_noreads_total{scanner="t1"} 1
# HELP scangw_device_reads_total Complete frames read from the scanner.
# TYPE scangw_device_reads_total counter
scangw_device_reads_total{scanner="t1"} 2
# HELP scangw_device_read_errors_total Frames discarded or reads failed, by reason.
# TYPE scangw_device_read_errors_total counter
scangw_device_read_errors_total{reason="io",scanner="t1"} 0
scangw_device_read_errors_total{reason="oversize",scanner="t1"} 1
scangw_device_read_errors_total{reason="refused",scanner="t1"} 0
# HELP scangw_device_reconnects_total Times the scanner's device was opened again after it was lost.
# TYPE scangw_device_reconnects_total counter
scangw_device_reconnects_total{scanner="t1"} 0
`
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestDisconnectMidFrame: half a frame, consumed before the connection
// dropped, is not glued to the first frame of the next connection.
func TestDisconnectMidFrame(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := baseConfig()
			next := m.setup(t, &cfg)
			r := startRig(t, cfg, nil)
			c1 := next(t, r)
			c1.write(t, "one\r\npart")
			r.expect(t, part{"one", false})
			c1.Close()
			// The driver read up to the end of the stream, "part"
			// included, before it saw the connection end.
			waitFor(t, "connection loss counted", func() bool { return r.ioErrors() >= 1 })

			c2 := next(t, r)
			c2.write(t, "two\r\n")
			r.expect(t, part{"two", false})
			r.noMoreReads(t)
			if got := r.metric(r.m.Reconnects.WithLabelValues("t1")); got != 1 {
				t.Errorf("reconnects = %v, want 1", got)
			}
			if got := r.metric(r.m.Connected.WithLabelValues("t1")); got != 1 {
				t.Errorf("connected gauge = %v, want 1", got)
			}
		})
	}
}

// TestIdleTimeout: a reader that goes silent is taken for dead; the driver
// closes its connection, and the next connection is read.
func TestIdleTimeout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.IdleTimeout = 50 * time.Millisecond
			next := m.setup(t, &cfg)
			r := startRig(t, cfg, nil)
			c1 := next(t, r)
			c1.write(t, "first\r\n")
			r.expect(t, part{"first", false})
			// Now silence: the driver must hang up on its own.
			if got := c1.waitClosed(t); got != "" {
				t.Errorf("gateway sent %q before closing", got)
			}
			lost := "reader connection lost; reopening"
			if m.name == "listen" {
				lost = "reader connection lost; waiting for the reader to connect again"
			}
			waitFor(t, "the loss logged", func() bool { return r.logs.count(slog.LevelWarn, lost) >= 1 })

			// The next connection is read. The timeout is short, so on a
			// loaded machine the driver may hang up on a connection
			// before the reader's write reaches it: then the reader
			// tries the next one, as a real one would.
			for attempt := 1; ; attempt++ {
				if attempt > 20 {
					t.Fatal("no connection lived long enough to deliver a frame")
				}
				c := next(t, r)
				c.write(t, "alive\r\n")
				closed := make(chan struct{})
				go func() { // no t here: it may outlive the subtest
					c.SetReadDeadline(time.Now().Add(waitLimit))
					io.Copy(io.Discard, c)
					close(closed)
				}()
				select {
				case rd := <-r.reads:
					if string(rd.Data) != "alive" {
						t.Fatalf("read %q, want alive", rd.Data)
					}
				case <-closed:
					continue
				}
				break
			}
			if got := r.metric(r.m.Reconnects.WithLabelValues("t1")); got < 1 {
				t.Errorf("reconnects = %v, want at least 1", got)
			}
			// Every loss was the idle timeout, none a read error.
			for _, rec := range r.logs.find(slog.LevelWarn, lost) {
				if !strings.Contains(attr(rec, "err"), errIdle.Error()) {
					t.Errorf("warning %v does not name the idle timeout", rec)
				}
			}
		})
	}
}

// TestListenReplacesConnection: a reader that reconnects (after a reboot
// that left its old connection half-open) replaces the old connection,
// which the gateway closes; feedback goes to the new one.
func TestListenReplacesConnection(t *testing.T) {
	cfg := baseConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Feedback = map[device.Signal][]byte{device.Good: []byte("ACK\r\n")}
	r := startRig(t, cfg, nil)

	c1 := dialGateway(t, r.s)
	c1.write(t, "a\r\nhalf")
	r.expect(t, part{"a", false})

	c2 := dialGateway(t, r.s)
	c2.write(t, "b\r\n")
	r.expect(t, part{"b", false})
	if got := c1.waitClosed(t); got != "" {
		t.Errorf("old connection got %q", got)
	}
	if err := r.s.Feedback(device.Good); err != nil {
		t.Fatalf("Feedback: %v", err)
	}
	if got := c2.readN(t, 5); got != "ACK\r\n" {
		t.Errorf("new connection got %q, want ACK", got)
	}
	c2.write(t, "c\r\n")
	r.expect(t, part{"c", false})
	r.noMoreReads(t)
	if got := r.metric(r.m.Reconnects.WithLabelValues("t1")); got != 1 {
		t.Errorf("reconnects = %v, want 1", got)
	}
	// A replacement is not a failure.
	if got := r.ioErrors(); got != 0 {
		t.Errorf("io errors = %v, want 0", got)
	}
	if got := r.logs.count(slog.LevelInfo, "reader connection replaced by a new one"); got != 1 {
		t.Errorf("%d replacement logs, want 1", got)
	}
}

// TestListenAllow: a peer outside Allow is refused (closed, counted,
// logged once), one inside is served.
func TestListenAllow(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24")}
		r := startRig(t, cfg, nil)
		for range 2 {
			c := dialGateway(t, r.s)
			c.Write([]byte("sneaky\r\n")) // may fail if already closed
			c.waitClosed(t)
		}
		waitFor(t, "refusals counted", func() bool {
			return r.metric(r.m.Errors.WithLabelValues("t1", "refused")) == 2
		})
		if r.s.Connected() {
			t.Error("Connected() after refusing the only peer")
		}
		// The same peer again is not a new warning.
		if got := r.logs.count(slog.LevelWarn, "reader connection refused: peer not in allow"); got != 1 {
			t.Errorf("%d refusal warnings, want 1", got)
		}
		r.noMoreReads(t)
		if got := r.metric(r.m.Reconnects.WithLabelValues("t1")); got != 0 {
			t.Errorf("reconnects = %v, want 0", got)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24"), netip.MustParsePrefix("127.0.0.1/32")}
		r := startRig(t, cfg, nil)
		c := dialGateway(t, r.s)
		c.write(t, "ok\r\n")
		r.expect(t, part{"ok", false})
	})
	t.Run("IPv4 peer on a dual-stack listener", func(t *testing.T) {
		if ln, err := net.Listen("tcp", "[::]:0"); err != nil {
			t.Skipf("no IPv6 on this host: %v", err)
		} else {
			ln.Close()
		}
		cfg := baseConfig()
		cfg.Listen = "[::]:0"
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		r := startRig(t, cfg, nil)
		waitFor(t, "listening", func() bool { return r.s.Addr() != nil })
		port := r.s.Addr().(*net.TCPAddr).Port
		c4, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), waitLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c4.Close()
		readerConn{c4}.write(t, "v4\r\n")
		r.expect(t, part{"v4", false})
	})
}

// TestFeedback: verdicts from the handler and from another goroutine,
// after handle returned, reach the reader in order; with no reader, the
// caller learns it is away.
func TestFeedback(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Feedback = map[device.Signal][]byte{
				device.Good: {0x06},
				device.Bad:  {0x15},
				device.Warn: {}, // configured empty: writes nothing
			}
			var fbErrs atomic.Int32
			next := m.setup(t, &cfg)
			rg := newRig(cfg)
			// The scanner's map is a copy.
			cfg.Feedback[device.Good][0] = 'X'
			if m.name == "listen" {
				if err := rg.s.Feedback(device.Good); !errors.Is(err, device.ErrNotConnected) {
					t.Errorf("Feedback before any reader = %v, want ErrNotConnected", err)
				}
			}
			r := rg.start(t, func(s *Scanner, _ context.Context, rd device.Read) {
				sig := device.Good
				switch string(rd.Data) {
				case "warn":
					sig = device.Warn
				case "bad":
					sig = device.Bad
				case "later":
					return // answered after handle returned
				}
				if err := s.Feedback(sig); err != nil {
					fbErrs.Add(1)
				}
			})
			c := next(t, r)
			c.write(t, "good1\r\nwarn\r\nbad\r\ngood2\r\n")
			if got, want := c.readN(t, 3), "\x06\x15\x06"; got != want {
				t.Errorf("reader received %q, want %q", got, want)
			}
			if n := fbErrs.Load(); n != 0 {
				t.Errorf("%d Feedback calls from the handler failed", n)
			}

			c.write(t, "later\r\n")
			r.expect(t, part{"good1", false}, part{"warn", false}, part{"bad", false}, part{"good2", false}, part{"later", false})
			if err := r.s.Feedback(device.Bad); err != nil {
				t.Fatalf("Feedback after handle returned: %v", err)
			}
			if got := c.readN(t, 1); got != "\x15" {
				t.Errorf("reader received %q, want NAK", got)
			}

			// The reader goes away for good: in connect mode a redial,
			// however soon, is refused.
			m.leave(t)
			c.Close()
			waitFor(t, "disconnected", func() bool { return !r.s.Connected() })
			if err := r.s.Feedback(device.Good); !errors.Is(err, device.ErrNotConnected) {
				t.Errorf("Feedback with the reader gone = %v, want ErrNotConnected", err)
			}
		})
	}
}

// TestRunStopsCleanly: Run returns nil when ctx ends, in every state, and
// leaves no goroutine behind; a connected reader sees its connection
// closed.
func TestRunStopsCleanly(t *testing.T) {
	states := []struct {
		name  string
		setup func(t *testing.T) (Config, func(*testing.T, *rig) *readerConn)
	}{
		{"connect: reading", func(t *testing.T) (Config, func(*testing.T, *rig) *readerConn) {
			cfg := baseConfig()
			fr := newFakeReader(t)
			cfg.Connect = fr.addr()
			return cfg, func(t *testing.T, r *rig) *readerConn {
				c := fr.accept(t)
				waitFor(t, "connected", r.s.Connected)
				return &c
			}
		}},
		{"connect: backing off", func(t *testing.T) (Config, func(*testing.T, *rig) *readerConn) {
			cfg := baseConfig()
			cfg.Connect = closedPort(t)
			cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
			return cfg, func(t *testing.T, r *rig) *readerConn {
				waitFor(t, "a failed dial", func() bool { return r.ioErrors() >= 1 })
				return nil
			}
		}},
		{"listen: no reader", func(t *testing.T) (Config, func(*testing.T, *rig) *readerConn) {
			cfg := baseConfig()
			cfg.Listen = "127.0.0.1:0"
			return cfg, func(t *testing.T, r *rig) *readerConn {
				waitFor(t, "listening", func() bool { return r.s.Addr() != nil })
				return nil
			}
		}},
		{"listen: reading", func(t *testing.T) (Config, func(*testing.T, *rig) *readerConn) {
			cfg := baseConfig()
			cfg.Listen = "127.0.0.1:0"
			return cfg, func(t *testing.T, r *rig) *readerConn {
				c := dialGateway(t, r.s)
				waitFor(t, "connected", r.s.Connected)
				return &c
			}
		}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			cfg, reach := st.setup(t)
			base := runtime.NumGoroutine()
			r := startRig(t, cfg, nil)
			c := reach(t, r)
			if c != nil {
				c.write(t, "last\r\n")
				r.expect(t, part{"last", false})
			}
			r.stop(t)
			if c != nil {
				c.waitClosed(t)
			}
			goroutinesBackTo(t, base)
			if r.s.Connected() || r.s.Addr() != nil {
				t.Errorf("after Run: Connected %v, Addr %v; want false, nil", r.s.Connected(), r.s.Addr())
			}
			if got := r.metric(r.m.Connected.WithLabelValues("t1")); got != 0 {
				t.Errorf("connected gauge = %v after Run returned, want 0", got)
			}
			if got := r.logs.count(slog.LevelWarn, "reader connection lost; reopening"); got != 0 {
				t.Errorf("shutdown logged as a lost connection %d times", got)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on: dials fail at
// once with "connection refused".
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSettledConnect: not settled while the first dial is under way,
// settled once it ended, here in failure; the next dial then connects.
func TestSettledConnect(t *testing.T) {
	fr := newFakeReader(t)
	cfg := baseConfig()
	cfg.Connect = fr.addr()
	r := newRig(cfg)
	dialing := make(chan struct{})
	release := make(chan error)
	redial := make(chan struct{}) // holds the second dial until the test looked
	var dials atomic.Int32
	realDial := r.s.dial
	r.s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch dials.Add(1) {
		case 1:
			close(dialing)
			if err := <-release; err != nil {
				return nil, err
			}
		case 2:
			<-redial
		}
		return realDial(ctx, network, addr)
	}
	if r.s.Settled() {
		t.Fatal("Settled before Run")
	}
	r.start(t, nil)
	<-dialing
	if r.s.Settled() {
		t.Fatal("Settled while the first dial is under way")
	}
	release <- errors.New("connection refused (test)")
	waitFor(t, "settled", r.s.Settled)
	if r.s.Connected() {
		t.Error("Connected after a failed dial")
	}
	close(redial)
	c := fr.accept(t)
	waitFor(t, "connected", r.s.Connected)
	c.write(t, "x\r\n")
	r.expect(t, part{"x", false})
	if got := r.metric(r.m.Reconnects.WithLabelValues("t1")); got != 0 {
		t.Errorf("reconnects = %v, want 0: the first connection is not a reconnect", got)
	}
}

// TestSettledListen: listening is settled with no reader at all; a
// listen address that cannot be bound is retried, logged once, settled.
func TestSettledListen(t *testing.T) {
	t.Run("bound", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Listen = "127.0.0.1:0"
		r := startRig(t, cfg, nil)
		waitFor(t, "settled", r.s.Settled)
		if r.s.Addr() == nil || r.s.Connected() {
			t.Errorf("settled with Addr %v, Connected %v; want an address, not connected", r.s.Addr(), r.s.Connected())
		}
	})
	t.Run("port taken", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig()
		cfg.Listen = taken.Addr().String()
		r := startRig(t, cfg, nil)
		// The scanner stays down, settled (the rest of the gateway
		// runs), says why once, and binds once the port is free.
		waitFor(t, "settled", r.s.Settled)
		waitFor(t, "a second attempt", func() bool { return r.ioErrors() >= 2 })
		recs := r.logs.find(slog.LevelError, "cannot listen for reader: check the listen address and that no other process holds the port; retrying")
		if len(recs) != 1 || !strings.Contains(attr(recs[0], "err"), "address already in use") {
			t.Errorf("error logs %v, want one naming the cause", recs)
		}
		if r.s.Addr() != nil {
			t.Error("an address while the port is taken")
		}
		taken.Close()
		waitFor(t, "bound once the port is free", func() bool { return r.s.Addr() != nil })
	})
}

func TestRunRefusesMisuse(t *testing.T) {
	noop := func(context.Context, device.Read) {}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"neither role", Config{ID: "x"}, "connect or listen is required"},
		{"both roles", Config{ID: "x", Connect: "a:1", Listen: ":2"}, "exclusive"},
		{"bad address", Config{ID: "x", Connect: "nocolon"}, "connect:"},
		{"allow without listen", Config{ID: "x", Connect: "a:1", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "allow is for listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := New(tc.cfg, nil, nil).Run(context.Background(), noop)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if err := New(Config{ID: "x", Listen: "127.0.0.1:0"}, nil, nil).Run(context.Background(), nil); err == nil {
		t.Error("Run without a handler succeeded")
	}
	cfg := baseConfig()
	cfg.Listen = "127.0.0.1:0"
	r := startRig(t, cfg, nil)
	waitFor(t, "listening", func() bool { return r.s.Addr() != nil })
	if err := r.s.Run(context.Background(), noop); err == nil {
		t.Error("second concurrent Run succeeded")
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := Config{Connect: "a:1", Listen: "b:2", Allow: nil}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	err = Config{Connect: "nocolon", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "connect:") || !strings.Contains(err.Error(), "allow") || !strings.Contains(err.Error(), "terminator") {
		t.Errorf("Validate = %v, want the address, allow and the frame reported together", err)
	}
}

// TestRunWaitsForHandler: Run does not return while a handler it called
// still runs, in either role: the reading goroutine is Run's own. The
// handler holds on past ctx's end until the test lets it go; a Run that
// returned in that window left its goroutine behind.
func TestRunWaitsForHandler(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := baseConfig()
			next := m.setup(t, &cfg)
			release := make(chan struct{})
			var returned atomic.Bool
			r := startRig(t, cfg, func(_ *Scanner, ctx context.Context, rd device.Read) {
				<-ctx.Done()
				<-release
				returned.Store(true)
			})
			c := next(t, r)
			c.write(t, "held\r\n")
			r.expect(t, part{"held", false})
			r.cancel()
			// A negative check: a correct Run never returns here, a
			// wrong one does within microseconds of cancel.
			select {
			case err := <-r.done:
				close(release)
				r.done <- err // for stop in Cleanup
				t.Fatalf("Run returned %v while its handler still ran", err)
			case <-time.After(50 * time.Millisecond):
			}
			close(release)
			r.stop(t)
			if !returned.Load() {
				t.Error("Run returned before its handler")
			}
		})
	}
}
