package tcpscan

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/device"
)

// waitLimit bounds every wait on a condition; it is a deadline against a
// hung test, never a measurement.
const waitLimit = 5 * time.Second

// logRecorder keeps log records so tests can count and inspect them.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// find returns the records of level with message msg.
func (r *logRecorder) find(level slog.Level, msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.recs {
		if rec.Level == level && rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *logRecorder) count(level slog.Level, msg string) int { return len(r.find(level, msg)) }

// attr returns the value of key in rec, "" when absent.
func attr(rec slog.Record, key string) string {
	v := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// rig is a Scanner under test with its metrics, logs and Run goroutine.
type rig struct {
	s     *Scanner
	reg   *prometheus.Registry
	m     *device.Metrics
	logs  *logRecorder
	reads chan device.Read

	cancel context.CancelFunc
	done   chan error
}

// baseConfig keeps every timer short so a reconnect takes milliseconds.
func baseConfig() Config {
	return Config{
		ID:           "t1",
		Frame:        device.FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 64},
		DialTimeout:  waitLimit,
		WriteTimeout: waitLimit,
		MinBackoff:   5 * time.Millisecond,
		MaxBackoff:   40 * time.Millisecond,
	}
}

// newRig makes a Scanner for cfg without running it.
func newRig(cfg Config) *rig {
	r := &rig{
		reg:   prometheus.NewRegistry(),
		logs:  &logRecorder{},
		reads: make(chan device.Read, 10000),
		done:  make(chan error, 1),
	}
	r.m = device.NewMetrics(r.reg)
	r.s = New(cfg, slog.New(r.logs), r.m)
	var tick atomic.Int64
	epoch := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r.s.now = func() time.Time { return epoch.Add(time.Duration(tick.Add(1)) * time.Millisecond) }
	return r
}

// start runs the Scanner. Each Read goes to r.reads; then, if handle is
// set, to handle as well, still inside Run's callback.
func (r *rig) start(t *testing.T, handle func(*Scanner, context.Context, device.Read)) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.s.Run(ctx, func(ctx context.Context, rd device.Read) {
			r.reads <- rd
			if handle != nil {
				handle(r.s, ctx, rd)
			}
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func startRig(t *testing.T, cfg Config, handle func(*Scanner, context.Context, device.Read)) *rig {
	t.Helper()
	return newRig(cfg).start(t, handle)
}

// stop cancels Run and waits, within waitLimit, for it to return nil.
// Calling it twice is harmless.
func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %v of cancel", waitLimit)
	}
}

func (r *rig) next(t *testing.T) device.Read {
	t.Helper()
	select {
	case rd := <-r.reads:
		return rd
	case <-time.After(waitLimit):
		t.Fatalf("no read within %v", waitLimit)
		return device.Read{}
	}
}

// expect takes len(want) reads and checks their data and NoRead flags.
func (r *rig) expect(t *testing.T, want ...part) {
	t.Helper()
	for i, w := range want {
		rd := r.next(t)
		if string(rd.Data) != w.data || rd.NoRead != w.noRead || rd.Err != nil || rd.Scanner != "t1" {
			t.Fatalf("read %d = {%q, noread %v, %v, scanner %q}, want %v", i, rd.Data, rd.NoRead, rd.Err, rd.Scanner, w)
		}
	}
}

// noMoreReads fails on a read already delivered but not expected.
func (r *rig) noMoreReads(t *testing.T) {
	t.Helper()
	select {
	case rd := <-r.reads:
		t.Errorf("unexpected read %q", rd.Data)
	default:
	}
}

func (r *rig) metric(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func (r *rig) ioErrors() float64 { return r.metric(r.m.Errors.WithLabelValues("t1", "io")) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// part is one expected Read.
type part struct {
	data   string
	noRead bool
}

// readerConn is the reader's end of a connection.
type readerConn struct{ net.Conn }

func (c readerConn) write(t *testing.T, s string) {
	t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("reader write: %v", err)
	}
}

// readN reads exactly n bytes the gateway sent to the reader.
func (c readerConn) readN(t *testing.T, n int) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reader read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

// waitClosed waits for the gateway to close the connection, and returns
// what it sent before.
func (c readerConn) waitClosed(t *testing.T) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("reader waiting for close: %v (got %q)", err, b)
	}
	return string(b)
}

// fakeReader is a reader in server mode: a loopback listener the gateway
// dials. It starts no goroutines: accept waits with a deadline.
type fakeReader struct{ ln *net.TCPListener }

func newFakeReader(t *testing.T) *fakeReader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeReader{ln: ln.(*net.TCPListener)}
}

func (f *fakeReader) addr() string { return f.ln.Addr().String() }

// accept returns the gateway's next connection.
func (f *fakeReader) accept(t *testing.T) readerConn {
	t.Helper()
	if err := f.ln.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	c, err := f.ln.Accept()
	if err != nil {
		t.Fatalf("fake reader accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return readerConn{c}
}

// dialGateway connects to a Scanner in Listen mode, as a reader in client
// mode does.
func dialGateway(t *testing.T, s *Scanner) readerConn {
	t.Helper()
	waitFor(t, "listening", func() bool { return s.Addr() != nil })
	c, err := net.DialTimeout("tcp", s.Addr().String(), waitLimit)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return readerConn{c}
}

// mode is one of the two roles; setup configures cfg for it and returns
// how the test gets the reader's next connection once the rig runs.
type mode struct {
	name  string
	setup func(t *testing.T, cfg *Config) func(*testing.T, *rig) readerConn
	// leave makes the reader unreachable for good after setup: in
	// connect mode its port refuses the gateway's redials; a reader in
	// listen mode simply stops dialling.
	leave func(t *testing.T)
}

var modes = []mode{connectMode(), listenMode()}

func connectMode() mode {
	var fr *fakeReader
	return mode{
		name: "connect",
		setup: func(t *testing.T, cfg *Config) func(*testing.T, *rig) readerConn {
			fr = newFakeReader(t)
			cfg.Connect = fr.addr()
			return func(t *testing.T, _ *rig) readerConn { return fr.accept(t) }
		},
		leave: func(*testing.T) { fr.ln.Close() },
	}
}

func listenMode() mode {
	return mode{
		name: "listen",
		setup: func(t *testing.T, cfg *Config) func(*testing.T, *rig) readerConn {
			cfg.Listen = "127.0.0.1:0"
			return func(t *testing.T, r *rig) readerConn { return dialGateway(t, r.s) }
		},
		leave: func(*testing.T) {},
	}
}

// goroutinesBackTo waits until no more goroutines run than base.
func goroutinesBackTo(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(2 * time.Millisecond)
	}
}
