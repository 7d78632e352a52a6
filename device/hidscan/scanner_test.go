package hidscan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/device"
)

// rig is a Scanner under test, fed by a sequence of playback devices that
// its opener hands out, with failed enumerations in between.
type rig struct {
	s     *Scanner
	reg   *prometheus.Registry
	clock *fakeClock
	reads chan device.Read

	cancel context.CancelFunc
	done   chan error

	mu              sync.Mutex
	opens           int
	connectedAtOpen []bool
}

// opening is one answer of the rig's opener: a device or an error.
type opening struct {
	dev *playback
	err error
}

// startRig runs a Scanner for cfg whose opener returns opens in order and
// then fails. Each Read goes to r.reads, then to handle if set, inside
// Run's callback.
func startRig(t *testing.T, cfg Config, clock *fakeClock, opens []opening, handle func(*Scanner, device.Read)) *rig {
	t.Helper()
	r := &rig{
		clock: clock,
		reg:   prometheus.NewRegistry(),
		reads: make(chan device.Read, 1000),
		done:  make(chan error, 1),
	}
	open := func(m Match) (Device, Info, error) {
		// The opener runs on the reading goroutine with no device
		// held: whatever it sees is the outage state.
		connected := r.s.Connected()
		r.mu.Lock()
		i := r.opens
		r.opens++
		r.connectedAtOpen = append(r.connectedAtOpen, connected)
		r.mu.Unlock()
		if i >= len(opens) {
			return nil, Info{}, fmt.Errorf("no HID device matches %s", m)
		}
		o := opens[i]
		if o.err != nil {
			return nil, Info{}, o.err
		}
		return o.dev, Info{VID: m.VID, PID: m.PID, Path: fmt.Sprintf("1-%d:1.0", i+1)}, nil
	}
	r.s = NewWithOpener(cfg, nil, device.NewMetrics(r.reg), open)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.s.Run(ctx, func(_ context.Context, rd device.Read) {
			r.reads <- rd
			if handle != nil {
				handle(r.s, rd)
			}
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

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

func (r *rig) openCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitIdle(t *testing.T, p *playback) {
	t.Helper()
	select {
	case <-p.idle:
	case <-time.After(waitLimit):
		t.Fatalf("playback not consumed within %v", waitLimit)
	}
}

// fastConfig keeps backoff short so a reconnect takes milliseconds.
func fastConfig(mode string) Config {
	return Config{
		ID:          "s1",
		Match:       Match{VID: 0x0c2e, PID: 0x0b61},
		Mode:        mode,
		ReadTimeout: 10 * time.Millisecond,
		MinBackoff:  time.Millisecond,
		MaxBackoff:  4 * time.Millisecond,
	}
}

func playbackOf(t *testing.T, clock *fakeClock, text string) *playback {
	t.Helper()
	return newPlayback(t, parseRecording(t, t.Name(), strings.NewReader(text)).steps, clock)
}

// TestUnplugReplug: a read error mid-scan is an unplug; the scanner
// reports the cut scan as bad, shows disconnected, enumerates until the
// device is back (a new device: hidapi handles do not survive a replug),
// and resumes.
func TestUnplugReplug(t *testing.T) {
	clock := newFakeClock()
	before := playbackOf(t, clock, `
		00 00 04 00 00 00 00 00  # a
		00 00 00 00 00 00 00 00
		00 00 28 00 00 00 00 00  # Enter
		00 00 00 00 00 00 00 00
		00 00 05 00 00 00 00 00  # b, then the cable is pulled
		!unplug
	`)
	after := playbackOf(t, clock, `
		00 00 06 00 00 00 00 00  # c
		00 00 00 00 00 00 00 00
		00 00 28 00 00 00 00 00  # Enter
		00 00 00 00 00 00 00 00
	`)
	gone := errors.New("no HID device matches vid=0c2e pid=0b61")
	opens := []opening{{dev: before}, {err: gone}, {err: gone}, {err: gone}, {dev: after}}
	r := startRig(t, fastConfig(ModeWedge), clock, opens, nil)

	if rd := r.next(t); string(rd.Data) != "a" || rd.Err != nil {
		t.Fatalf("first read = %q, %v; want \"a\"", rd.Data, rd.Err)
	}
	rd := r.next(t)
	var de *DecodeError
	if string(rd.Data) != "b" || !errors.As(rd.Err, &de) || !strings.Contains(de.Reason, "lost mid-scan") {
		t.Fatalf("read cut by the unplug = %q, %v; want \"b\" with a lost-mid-scan error", rd.Data, rd.Err)
	}
	waitFor(t, "reopen attempts", func() bool { return r.openCalls() >= 5 })
	if !before.isClosed() {
		t.Error("the lost device was not closed")
	}
	if rd := r.next(t); string(rd.Data) != "c" || rd.Err != nil {
		t.Fatalf("read after replug = %q, %v; want \"c\"", rd.Data, rd.Err)
	}
	waitIdle(t, after)
	if !r.s.Connected() {
		t.Error("not connected after replug")
	}
	if info, ok := r.s.Device(); !ok || info.Path != "1-5:1.0" {
		t.Errorf("Device() = %+v, %v; want the replugged device", info, ok)
	}
	r.mu.Lock()
	if got := fmt.Sprint(r.connectedAtOpen); got != "[false false false false false]" {
		t.Errorf("Connected() at each open = %s, want false throughout the outage", got)
	}
	r.mu.Unlock()

	want := `
# HELP scangw_device_connected 1 while the scanner's device is open.
# TYPE scangw_device_connected gauge
scangw_device_connected{scanner="s1"} 1
# HELP scangw_device_read_errors_total Frames discarded or reads failed, by reason.
# TYPE scangw_device_read_errors_total counter
scangw_device_read_errors_total{reason="decode",scanner="s1"} 1
scangw_device_read_errors_total{reason="io",scanner="s1"} 4
scangw_device_read_errors_total{reason="overrun",scanner="s1"} 0
scangw_device_read_errors_total{reason="oversize",scanner="s1"} 0
# HELP scangw_device_reads_total Complete frames read from the scanner.
# TYPE scangw_device_reads_total counter
scangw_device_reads_total{scanner="s1"} 2
# HELP scangw_device_reconnects_total Times the scanner's device was opened again after it was lost.
# TYPE scangw_device_reconnects_total counter
scangw_device_reconnects_total{scanner="s1"} 1
`
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestDisconnectedWhileAway checks Connected and Feedback during an
// outage that lasts until the test ends it.
func TestDisconnectedWhileAway(t *testing.T) {
	clock := newFakeClock()
	dev := playbackOf(t, clock, "!unplug\n")
	r := startRig(t, fastConfig(ModeHIDPOS), clock, []opening{{dev: dev}}, nil)
	waitFor(t, "failed reopen", func() bool { return r.openCalls() >= 3 })
	if r.s.Connected() {
		t.Error("Connected() = true while the device is gone")
	}
	if err := r.s.Feedback(device.Good); !errors.Is(err, device.ErrNotConnected) {
		t.Errorf("Feedback while away = %v, want ErrNotConnected", err)
	}
	if got := testutil.ToFloat64(r.s.metrics.Connected); got != 0 {
		t.Errorf("connected gauge = %v, want 0", got)
	}
}

// TestHIDPOSFeedback: feedback output reports go to the device in the
// handler, after the read; the defaults are Honeywell's beep report.
func TestHIDPOSFeedback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		feedback map[device.Signal][]byte
		sig      device.Signal
		want     string
	}{
		{"default good", nil, device.Good, "[04 40]"},
		{"default warn", nil, device.Warn, "[04 40]"},
		{"default bad", nil, device.Bad, "[04 20]"},
		{"configured", map[device.Signal][]byte{device.Bad: {0xFD, 0x03, 0x16, 0x07, 0x0D}}, device.Bad, "[fd 03 16 07 0d]"},
		{"configured without this signal", map[device.Signal][]byte{device.Bad: {0x04, 0x20}}, device.Good, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			rep := pos(t, "]C1", "ABC", false)
			dev := playbackOf(t, clock, rep+"\n")
			cfg := fastConfig(ModeHIDPOS)
			cfg.Feedback = tc.feedback
			fbErr := make(chan error, 1)
			r := startRig(t, cfg, clock, []opening{{dev: dev}}, func(s *Scanner, rd device.Read) {
				fbErr <- s.Feedback(tc.sig)
			})
			rd := r.next(t)
			if string(rd.Data) != "ABC" || rd.Symbology != "]C1" {
				t.Fatalf("read = %q sym %q", rd.Data, rd.Symbology)
			}
			if err := <-fbErr; err != nil {
				t.Fatalf("Feedback: %v", err)
			}
			var got []string
			for _, w := range dev.written() {
				got = append(got, fmt.Sprintf("% x", w))
			}
			if s := "[" + strings.Join(got, "][") + "]"; s != tc.want {
				t.Errorf("written %s, want %s", s, tc.want)
			}
			waitIdle(t, dev)
		})
	}
}

func TestFeedbackWriteError(t *testing.T) {
	clock := newFakeClock()
	dev := playbackOf(t, clock, pos(t, "]C1", "X", false))
	dev.writeErr = errors.New("hidapi: hid_error is not implemented yet")
	fbErr := make(chan error, 1)
	r := startRig(t, fastConfig(ModeHIDPOS), clock, []opening{{dev: dev}}, func(s *Scanner, rd device.Read) {
		fbErr <- s.Feedback(device.Bad)
	})
	r.next(t)
	if err := <-fbErr; err == nil || !strings.Contains(err.Error(), "feedback bad to s1") {
		t.Errorf("Feedback = %v, want a wrapped write error", err)
	}
	waitIdle(t, dev)
}

// TestWedgeFeedbackWritesNothing: a keyboard cannot beep on request, so the
// station's indicator must carry the verdict.
func TestWedgeFeedbackWritesNothing(t *testing.T) {
	clock := newFakeClock()
	dev := playbackOf(t, clock, "00 00 04 00 00 00 00 00\n00 00 28 00 00 00 00 00\n")
	fbErr := make(chan error, 1)
	r := startRig(t, fastConfig(ModeWedge), clock, []opening{{dev: dev}}, func(s *Scanner, rd device.Read) {
		fbErr <- s.Feedback(device.Good)
	})
	r.next(t)
	if err := <-fbErr; err != nil {
		t.Errorf("Feedback = %v, want nil", err)
	}
	waitIdle(t, dev)
	if w := dev.written(); len(w) != 0 {
		t.Errorf("wrote %x to a wedge scanner", w)
	}
	if r.s.SignalsVerdict() {
		t.Error("SignalsVerdict() = true for a wedge scanner")
	}
	hp := NewWithOpener(fastConfig(ModeHIDPOS), nil, nil, nil)
	if !hp.SignalsVerdict() {
		t.Error("SignalsVerdict() = false for a HID POS scanner with default feedback")
	}
}

// TestStopMidScan: a wedge scan cut by shutdown is still handed over, as
// bad, so nobody waits for its verdict.
func TestStopMidScan(t *testing.T) {
	clock := newFakeClock()
	dev := playbackOf(t, clock, "00 00 04 00 00 00 00 00\n00 00 00 00 00 00 00 00\n")
	cfg := fastConfig(ModeWedge)
	cfg.Gap = -1
	r := startRig(t, cfg, clock, []opening{{dev: dev}}, nil)
	waitIdle(t, dev)
	r.stop(t)
	rd := r.next(t)
	var de *DecodeError
	if string(rd.Data) != "a" || !errors.As(rd.Err, &de) || !strings.Contains(de.Reason, "stopped mid-scan") {
		t.Errorf("read = %q, %v; want \"a\" with a stopped-mid-scan error", rd.Data, rd.Err)
	}
	if !dev.isClosed() {
		t.Error("device not closed when Run returned")
	}
}

// TestOverrunCountsDroppedScans: a handler that stalls must not stall the
// reads (hidapi would drop reports and corrupt scans); whole scans are
// dropped and counted instead.
func TestOverrunCountsDroppedScans(t *testing.T) {
	const n = 100
	var rec strings.Builder
	for i := range n {
		rec.WriteString(pos(t, "]C1", fmt.Sprintf("SCAN%03d", i), false) + "\n")
	}
	clock := newFakeClock()
	dev := playbackOf(t, clock, rec.String())
	release := make(chan struct{})
	var once sync.Once
	r := startRig(t, fastConfig(ModeHIDPOS), clock, []opening{{dev: dev}}, func(*Scanner, device.Read) {
		once.Do(func() { <-release })
	})
	waitIdle(t, dev)
	close(release)
	r.stop(t)
	got := len(r.reads)
	overrun := testutil.ToFloat64(r.s.metrics.Errors["overrun"])
	if overrun == 0 || got+int(overrun) != n {
		t.Errorf("delivered %d, overrun %v; want some overrun and %d in all", got, overrun, n)
	}
	// What was delivered is in order.
	prev := -1
	for range got {
		rd := <-r.reads
		var i int
		if _, err := fmt.Sscanf(string(rd.Data), "SCAN%d", &i); err != nil || i <= prev {
			t.Fatalf("read %q out of order after %d", rd.Data, prev)
		}
		prev = i
	}
}

func TestRunRejects(t *testing.T) {
	noop := func(context.Context, device.Read) {}
	t.Run("bad config", func(t *testing.T) {
		s := NewWithOpener(Config{ID: "s1"}, nil, nil, nil)
		if err := s.Run(context.Background(), noop); err == nil || !strings.Contains(err.Error(), "match") {
			t.Errorf("Run = %v, want a match error", err)
		}
	})
	t.Run("nil handler", func(t *testing.T) {
		s := NewWithOpener(fastConfig(ModeWedge), nil, nil, nil)
		if err := s.Run(context.Background(), nil); err == nil {
			t.Error("Run(nil handler) = nil")
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		open := func(Match) (Device, Info, error) { return nil, Info{}, availability(false, false) }
		s := NewWithOpener(fastConfig(ModeWedge), nil, nil, open)
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background(), noop) }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
				t.Errorf("Run = %v, want ErrUnavailable naming CGO_ENABLED=0", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Run kept retrying an unavailable HID")
		}
	})
	t.Run("already running", func(t *testing.T) {
		clock := newFakeClock()
		dev := playbackOf(t, clock, "")
		r := startRig(t, fastConfig(ModeWedge), clock, []opening{{dev: dev}}, nil)
		waitIdle(t, dev)
		if err := r.s.Run(context.Background(), noop); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("second Run = %v", err)
		}
	})
}

func TestValidateReportsEveryField(t *testing.T) {
	iface := -1
	err := Config{
		Match:       Match{Interface: &iface},
		Mode:        ModeWedge,
		Layout:      "dvorak",
		NoAIM:       true,
		ReadTimeout: -time.Second,
		MaxScan:     -1,
	}.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	for _, field := range []string{"id:", "match:", "match.interface:", "layout", "no_aim:", "read_timeout:", "max_scan:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate error lacks %q:\n%v", field, err)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown mode", Config{ID: "a", Match: Match{VID: 1}, Mode: "serial"}, "mode"},
		{"hidpos with layout", Config{ID: "a", Match: Match{VID: 1}, Mode: ModeHIDPOS, Layout: "de"}, "mode"},
		{"unknown terminator", Config{ID: "a", Match: Match{VID: 1}, Terminators: []string{"space"}}, "terminators"},
		{"none with enter", Config{ID: "a", Match: Match{VID: 1}, Terminators: []string{"none", "enter"}}, "terminators"},
		{"never ends", Config{ID: "a", Match: Match{VID: 1}, Terminators: []string{"none"}, Gap: -1}, "never end"},
		{"long read timeout", Config{ID: "a", Match: Match{VID: 1}, ReadTimeout: time.Hour}, "read_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error about %s", err, tc.want)
			}
		})
	}
	ok := Config{ID: "a", Match: Match{Path: "1-1.4:1.1"}, Mode: ModeHIDPOS}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(path-only hidpos) = %v", err)
	}
}

func TestMatch(t *testing.T) {
	one := 1
	dev := Info{VID: 0x0c2e, PID: 0x0b61, Serial: "17123B", Interface: 1, Path: "1-1.4:1.1"}
	for _, tc := range []struct {
		m    Match
		want bool
	}{
		{Match{VID: 0x0c2e}, true},
		{Match{VID: 0x0c2e, PID: 0x0b61, Interface: &one}, true},
		{Match{VID: 0x0c2e, PID: 0x0b62}, false},
		{Match{VID: 0x0c2e, Serial: "17123B"}, true},
		{Match{VID: 0x0c2e, Serial: "other"}, false},
		{Match{Path: "1-1.4:1.1"}, true},
		{Match{Path: "1-1.4:1.0"}, false},
		{Match{VID: 0x0c2e, Interface: new(int)}, false},
	} {
		if got := tc.m.Matches(dev.ID()); got != tc.want {
			t.Errorf("%s matches %+v = %v, want %v", tc.m, dev, got, tc.want)
		}
	}
	if s := (Match{VID: 0x0c2e, PID: 0x0b61, Interface: &one, Serial: "X"}).String(); s != `vid=0c2e pid=0b61 interface=1 serial="X"` {
		t.Errorf("String = %s", s)
	}
	if !(Match{}).IsZero() || (Match{Path: "x"}).IsZero() {
		t.Error("IsZero wrong")
	}
}

// TestAvailability covers the message a CGO_ENABLED=0 build gives, whatever
// this test binary was built with; nocgo_test.go checks the real stub.
func TestAvailability(t *testing.T) {
	if err := availability(true, true); err != nil {
		t.Errorf("availability(supported) = %v", err)
	}
	err := availability(false, false)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v does not match ErrUnavailable", err)
	}
	if want := "HID scanners need a cgo build (this binary was built with CGO_ENABLED=0)"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	if err := availability(false, true); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not supported on") {
		t.Errorf("availability(unsupported platform) = %v", err)
	}
}

func TestTimeoutMillis(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{-time.Second, 1}, {0, 1}, {time.Microsecond, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {200 * time.Millisecond, 200}} {
		if got := timeoutMillis(tc.d); got != tc.want {
			t.Errorf("timeoutMillis(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// pos returns a 64-byte HID POS report in the testdata hex format.
func pos(t *testing.T, aim, data string, cont bool) string {
	t.Helper()
	if len(data) > 56 || len(aim) != 3 {
		t.Fatalf("pos(%q, %q): does not fit one report", aim, data)
	}
	r := make([]byte, 64)
	r[0], r[1] = 0x02, byte(len(data))
	copy(r[2:], aim)
	copy(r[5:], data)
	if cont {
		r[63] = 1
	}
	return fmt.Sprintf("% x", r)
}

// TestWakeEndsBackoff: a hotplug wake cuts the reopen backoff short, so a
// device that appears is opened at once, not an hour later.
func TestWakeEndsBackoff(t *testing.T) {
	clock := newFakeClock()
	wake := make(chan struct{}, 1)
	cfg := fastConfig(ModeHIDPOS)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	cfg.Wake = wake
	r := startRig(t, cfg, clock, []opening{
		{err: errors.New("no HID device matches")},
		{dev: playbackOf(t, clock, "")},
	}, nil)

	waitFor(t, "a failed open", func() bool { return r.openCalls() >= 1 })
	if r.s.Connected() {
		t.Fatal("connected before the device appeared")
	}
	wake <- struct{}{}
	waitFor(t, "connected after wake", r.s.Connected)
	if got := r.openCalls(); got != 2 {
		t.Errorf("%d opens, want 2", got)
	}
}
