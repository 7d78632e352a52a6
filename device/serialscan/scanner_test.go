package serialscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/device/serialsim"
)

const waitLimit = 5 * time.Second

// testPTY is a pseudo-terminal standing in for a scanner: the test writes
// scans into master, the driver opens slave like /dev/ttyACM0.
type testPTY struct {
	master *os.File
	// slave is the test's own handle on the slave side. Holding it keeps
	// the line's settings and lets the test ask how much input is unread.
	slave     *os.File
	slaveName string
	closeOnce sync.Once
}

// newPTY opens a pty pair with the slave already in raw mode. Without that,
// bytes written before the driver's open sets raw mode pass the default
// line discipline: "\r" becomes "\n" (ICRNL) and is echoed back into the
// master, depending on who wins the race.
func newPTY(t *testing.T) *testPTY {
	t.Helper()
	return openPTY(t, true)
}

// openPTY opens a pty pair; raw sets the slave raw, as a tty a serial
// driver opened before is; otherwise it keeps the kernel's cooked default,
// as a tty after a boot or a replug.
func openPTY(t *testing.T, raw bool) *testPTY {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	if raw {
		if err := serialsim.MakeRaw(s); err != nil {
			t.Fatal(err)
		}
	}
	// pty.Open calls Fd() on the master, which takes it out of the
	// runtime poller: no read deadlines, and a Close that waits for a
	// blocked Read. A non-blocking duplicate is pollable again.
	fd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		t.Fatalf("dup master: %v", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatalf("nonblock master: %v", err)
	}
	m.Close()
	p := &testPTY{master: os.NewFile(uintptr(fd), "/dev/ptmx"), slave: s, slaveName: s.Name()}
	t.Cleanup(p.close)
	return p
}

// close hangs the line up, as pulling a USB scanner does.
func (p *testPTY) close() {
	p.closeOnce.Do(func() {
		p.master.Close()
		p.slave.Close()
	})
}

func (p *testPTY) write(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty master: %v", err)
	}
}

// unread is how many bytes wait in the slave's input queue.
func (p *testPTY) unread(t *testing.T) int {
	t.Helper()
	n, err := unix.IoctlGetInt(int(p.slave.Fd()), unix.TIOCINQ)
	if err != nil {
		t.Fatalf("TIOCINQ: %v", err)
	}
	return n
}

// readMaster reads exactly n bytes the driver wrote to the scanner.
func (p *testPTY) readMaster(t *testing.T, n int) string {
	t.Helper()
	if err := p.master.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatalf("master deadline: %v", err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.master, b); err != nil {
		t.Fatalf("read %d bytes from master: %v (got %q)", n, err, b)
	}
	return string(b)
}

// logRecorder keeps log records so tests can count them.
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

func (r *logRecorder) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && rec.Message == msg {
			n++
		}
	}
	return n
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

// testConfig keeps every timer short so a reconnect takes milliseconds.
func testConfig(port string) Config {
	return Config{
		ID:          "s1",
		Port:        port,
		Frame:       device.FrameConfig{Terminator: []byte("\r\n"), MaxFrame: 64},
		ReadTimeout: 20 * time.Millisecond,
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  40 * time.Millisecond,
	}
}

// startRig runs a Scanner for cfg. Each Read goes to r.reads; then, if
// handle is set, to handle as well, still inside Run's callback, with the
// Scanner so the handler can give feedback.
func startRig(t *testing.T, cfg Config, handle func(*Scanner, context.Context, device.Read)) *rig {
	t.Helper()
	r := &rig{
		reg:   prometheus.NewRegistry(),
		logs:  &logRecorder{},
		reads: make(chan device.Read, 1000),
		done:  make(chan error, 1),
	}
	r.m = device.NewMetrics(r.reg)
	r.s = New(cfg, slog.New(r.logs), r.m)
	var tick atomic.Int64
	epoch := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r.s.now = func() time.Time { return epoch.Add(time.Duration(tick.Add(1)) * time.Millisecond) }

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

// stop cancels Run and waits for it; it returns how long Run took to
// return. Calling it twice is harmless.
func (r *rig) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
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
	return time.Since(start)
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

func (r *rig) metric(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

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

func TestScannerDeliversFramesInOrder(t *testing.T) {
	p := newPTY(t)
	r := startRig(t, testConfig(p.slaveName), nil)
	waitFor(t, "connected", r.s.Connected)

	const n = 200
	go func() {
		// Odd frames are split inside the terminator, so frames and
		// terminators straddle reads.
		for i := range n {
			frame := fmt.Sprintf("]C1SCAN-%04d\x1d21X\r\n", i)
			if i%2 == 1 {
				cut := len(frame) - 1
				p.master.Write([]byte(frame[:cut]))
				p.master.Write([]byte(frame[cut:]))
				continue
			}
			p.master.Write([]byte(frame))
		}
	}()
	var last time.Time
	for i := range n {
		rd := r.next(t)
		want := fmt.Sprintf("]C1SCAN-%04d\x1d21X", i)
		if string(rd.Data) != want || rd.Err != nil || rd.Scanner != "s1" {
			t.Fatalf("read %d = {%q, %q, %v}, want {%q, s1, nil}", i, rd.Data, rd.Scanner, rd.Err, want)
		}
		if rd.Time.Before(last) || rd.Time.IsZero() {
			t.Fatalf("read %d time %v, previous %v: want the injected clock, non-decreasing", i, rd.Time, last)
		}
		last = rd.Time
	}

	want := `
# HELP scangw_device_connected 1 while the scanner's device is open.
# TYPE scangw_device_connected gauge
scangw_device_connected{scanner="s1"} 1
# HELP scangw_device_reads_total Complete frames read from the scanner.
# TYPE scangw_device_reads_total counter
scangw_device_reads_total{scanner="s1"} 200
# HELP scangw_device_read_errors_total Frames discarded or reads failed, by reason.
# TYPE scangw_device_read_errors_total counter
scangw_device_read_errors_total{reason="io",scanner="s1"} 0
scangw_device_read_errors_total{reason="oversize",scanner="s1"} 0
`
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want),
		"scangw_device_connected", "scangw_device_reads_total", "scangw_device_read_errors_total"); err != nil {
		t.Error(err)
	}
	if got := r.logs.count(slog.LevelInfo, "scanner opened"); got != 1 {
		t.Errorf("%d 'scanner opened' logs, want 1", got)
	}
}

func TestScannerFeedback(t *testing.T) {
	p := newPTY(t)
	cfg := testConfig(p.slaveName)
	cfg.Feedback = map[device.Signal][]byte{
		device.Good: {0x06},
		device.Bad:  {0x15},
		device.Warn: {}, // configured empty: writes nothing
	}
	var feedbackErrs atomic.Int32
	r := startRig(t, cfg, func(s *Scanner, _ context.Context, rd device.Read) {
		sig := device.Good
		switch string(rd.Data) {
		case "warn":
			sig = device.Warn
		case "bad":
			sig = device.Bad
		}
		if err := s.Feedback(sig); err != nil {
			feedbackErrs.Add(1)
		}
	})
	s := r.s
	// The scanner's map is a copy: changing the caller's afterwards must
	// not change what is written.
	cfg.Feedback[device.Good][0] = 'X'
	waitFor(t, "connected", s.Connected)

	// Anything written for "warn" would show up out of order here.
	p.write(t, "good1\r\nwarn\r\nbad\r\ngood2\r\n")
	if got, want := p.readMaster(t, 3), "\x06\x15\x06"; got != want {
		t.Errorf("scanner received %q, want %q", got, want)
	}
	if n := feedbackErrs.Load(); n != 0 {
		t.Errorf("%d Feedback calls from the handler failed", n)
	}

	// From another goroutine, while Run is reading.
	if err := s.Feedback(device.Bad); err != nil {
		t.Fatalf("Feedback from test goroutine: %v", err)
	}
	if got, want := p.readMaster(t, 1), "\x15"; got != want {
		t.Errorf("scanner received %q, want %q", got, want)
	}
}

func TestScannerOversizeThenGoodFrame(t *testing.T) {
	p := newPTY(t)
	cfg := testConfig(p.slaveName)
	cfg.Frame.MaxFrame = 16
	r := startRig(t, cfg, nil)

	// Written before the open on purpose: the driver must not flush what
	// is waiting.
	p.write(t, strings.Repeat("X", 100)+"\r\nafter\r\n")

	rd := r.next(t)
	if !errors.Is(rd.Err, device.ErrOversize) || string(rd.Data) != strings.Repeat("X", 16) {
		t.Errorf("first read = {%q, %v}, want 16 X with ErrOversize", rd.Data, rd.Err)
	}
	rd = r.next(t)
	if rd.Err != nil || string(rd.Data) != "after" {
		t.Errorf("second read = {%q, %v}, want {after, nil}", rd.Data, rd.Err)
	}
	if got := r.metric(r.m.Errors.WithLabelValues("s1", "oversize")); got != 1 {
		t.Errorf("oversize errors = %v, want 1", got)
	}
	if got := r.metric(r.m.Reads.WithLabelValues("s1")); got != 1 {
		t.Errorf("reads = %v, want 1", got)
	}
	select {
	case rd := <-r.reads:
		t.Errorf("unexpected extra read %q", rd.Data)
	default:
	}
}

func TestScannerReconnectsWhenPortComesBack(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	p1 := newPTY(t)
	if err := os.Symlink(p1.slaveName, link); err != nil {
		t.Fatal(err)
	}
	r := startRig(t, testConfig(link), nil)
	waitFor(t, "connected", r.s.Connected)

	p1.write(t, "one\r\n")
	if rd := r.next(t); string(rd.Data) != "one" {
		t.Fatalf("read %q, want one", rd.Data)
	}
	// Half a scan, consumed by the driver before the line drops, must
	// not be glued to the first scan after the reconnect.
	p1.write(t, "partial")
	waitFor(t, "partial frame consumed", func() bool { return p1.unread(t) == 0 })

	// Unplug: udev removes the link, the device node goes. The link goes
	// first because the kernel reuses pty numbers at once, and a stale
	// link could otherwise reach some other test's terminal.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	p1.close()
	waitFor(t, "disconnected", func() bool { return !r.s.Connected() })
	if err := r.s.Feedback(device.Good); !errors.Is(err, device.ErrNotConnected) {
		t.Errorf("Feedback while unplugged = %v, want ErrNotConnected", err)
	}
	if got := r.metric(r.m.Connected.WithLabelValues("s1")); got != 0 {
		t.Errorf("connected gauge = %v while unplugged, want 0", got)
	}

	p2 := newPTY(t)
	p2.write(t, "two\r\n")
	if err := os.Symlink(p2.slaveName, link); err != nil {
		t.Fatal(err)
	}
	if rd := r.next(t); string(rd.Data) != "two" || rd.Err != nil {
		t.Fatalf("read after reconnect = {%q, %v}, want {two, nil}", rd.Data, rd.Err)
	}
	p2.write(t, "three\r\n")
	if rd := r.next(t); string(rd.Data) != "three" {
		t.Fatalf("read %q, want three", rd.Data)
	}
	if got := r.metric(r.m.Reconnects.WithLabelValues("s1")); got != 1 {
		t.Errorf("reconnects = %v, want 1", got)
	}
	if got := r.metric(r.m.Errors.WithLabelValues("s1", "io")); got < 1 {
		t.Errorf("io errors = %v, want at least the lost read", got)
	}
	if got := r.metric(r.m.Connected.WithLabelValues("s1")); got != 1 {
		t.Errorf("connected gauge = %v, want 1", got)
	}
	if got := r.logs.count(slog.LevelWarn, "scanner port lost; reopening"); got != 1 {
		t.Errorf("%d 'port lost' warnings, want 1", got)
	}
	if got := r.logs.count(slog.LevelInfo, "scanner reconnected"); got != 1 {
		t.Errorf("%d 'reconnected' logs, want 1", got)
	}
}

func TestScannerWaitsForMissingPort(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	r := startRig(t, testConfig(link), nil)

	waitFor(t, "several open attempts", func() bool {
		return r.metric(r.m.Errors.WithLabelValues("s1", "io")) >= 4
	})
	if r.s.Connected() {
		t.Fatal("Connected() with no port")
	}
	if err := r.s.Feedback(device.Good); !errors.Is(err, device.ErrNotConnected) {
		t.Errorf("Feedback = %v, want ErrNotConnected", err)
	}
	// Retries must not flood the log.
	if got := r.logs.count(slog.LevelWarn, "cannot open scanner port; retrying"); got != 1 {
		t.Errorf("%d open-failure warnings, want exactly 1 per outage", got)
	}

	p := newPTY(t)
	if err := os.Symlink(p.slaveName, link); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connected", r.s.Connected)
	p.write(t, "hello\r\n")
	if rd := r.next(t); string(rd.Data) != "hello" {
		t.Fatalf("read %q, want hello", rd.Data)
	}
	if got := r.metric(r.m.Reconnects.WithLabelValues("s1")); got != 0 {
		t.Errorf("reconnects = %v, want 0: the first open is not a reconnect", got)
	}
}

func TestScannerRunReturnsPromptlyOnCancel(t *testing.T) {
	t.Run("reading", func(t *testing.T) {
		p := newPTY(t)
		cfg := testConfig(p.slaveName)
		cfg.ReadTimeout = 0 // the default bounds the wait
		r := startRig(t, cfg, nil)
		waitFor(t, "connected", r.s.Connected)
		if d := r.stop(t); d > DefaultReadTimeout+time.Second {
			t.Errorf("Run took %v to return", d)
		}
		if r.s.Connected() {
			t.Error("Connected() after Run returned")
		}
		if got := r.metric(r.m.Connected.WithLabelValues("s1")); got != 0 {
			t.Errorf("connected gauge = %v after Run returned, want 0", got)
		}
	})
	t.Run("backing off", func(t *testing.T) {
		cfg := testConfig(filepath.Join(t.TempDir(), "absent"))
		cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
		r := startRig(t, cfg, nil)
		waitFor(t, "first open attempt", func() bool {
			return r.metric(r.m.Errors.WithLabelValues("s1", "io")) >= 1
		})
		if d := r.stop(t); d > time.Second {
			t.Errorf("Run took %v to return", d)
		}
	})
}

func TestScannerRunRefusesMisuse(t *testing.T) {
	noop := func(context.Context, device.Read) {}
	if err := New(Config{ID: "x"}, nil, nil).Run(context.Background(), noop); err == nil {
		t.Error("Run without a port succeeded")
	}
	if err := New(Config{ID: "x", Port: "/dev/null"}, nil, nil).Run(context.Background(), nil); err == nil {
		t.Error("Run without a handler succeeded")
	}

	p := newPTY(t)
	r := startRig(t, testConfig(p.slaveName), nil)
	waitFor(t, "connected", r.s.Connected)
	if err := r.s.Run(context.Background(), noop); err == nil {
		t.Error("second concurrent Run succeeded")
	}
}

// TestWakeEndsBackoff: a hotplug wake cuts the reopen backoff short, so a
// port that appears is opened at once, not an hour later.
func TestWakeEndsBackoff(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	wake := make(chan struct{}, 1)
	cfg := testConfig(link)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	cfg.Wake = wake
	r := startRig(t, cfg, nil)

	waitFor(t, "a failed open", func() bool {
		return r.metric(r.m.Errors.WithLabelValues("s1", "io")) >= 1
	})
	p := newPTY(t)
	if err := os.Symlink(p.slaveName, link); err != nil {
		t.Fatal(err)
	}
	wake <- struct{}{}
	waitFor(t, "connected after wake", r.s.Connected)
	p.write(t, "hello\r\n")
	if rd := r.next(t); string(rd.Data) != "hello" {
		t.Fatalf("read %q, want hello", rd.Data)
	}
}

// TestScannerFramingAndCodes: a serial scanner takes the same framing and
// code options as a TCP reader: STX/ETX, a prefix, several codes in one
// frame, and a no-read text, counted apart from the reads.
func TestScannerFramingAndCodes(t *testing.T) {
	p := newPTY(t)
	cfg := testConfig(p.slaveName)
	cfg.Frame.STXETX = true
	cfg.Frame.Prefix = []byte("R:")
	cfg.Codes = device.Codes{NoRead: [][]byte{[]byte("NOREAD")}, Split: []byte(",")}
	r := startRig(t, cfg, nil)
	waitFor(t, "connected", r.s.Connected)

	// The terminator of testConfig ("\r\n") must not cut anything.
	p.write(t, "\x02R:A1,B2\x03\r\n\x02R:NOREAD\x03\x02C\r\n3\x03")
	for _, want := range []struct {
		data   string
		noRead bool
	}{{"A1", false}, {"B2", false}, {"NOREAD", true}, {"C\r\n3", false}} {
		rd := r.next(t)
		if string(rd.Data) != want.data || rd.NoRead != want.noRead || rd.Err != nil {
			t.Fatalf("read {%q, noread %v, %v}, want {%q, noread %v, nil}", rd.Data, rd.NoRead, rd.Err, want.data, want.noRead)
		}
	}
	want := `
# HELP scangw_device_noreads_total Results in which the reader reported that it read no code.
# TYPE scangw_device_noreads_total counter
scangw_device_noreads_total{scanner="s1"} 1
# HELP scangw_device_reads_total Complete frames read from the scanner.
# TYPE scangw_device_reads_total counter
scangw_device_reads_total{scanner="s1"} 3
`
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want),
		"scangw_device_reads_total", "scangw_device_noreads_total"); err != nil {
		t.Error(err)
	}
}
