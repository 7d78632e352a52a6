package serialscan

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/device"
)

// TestCookedInputDroppedAtOpen: frames that reached a tty still in its
// cooked default (CR turned LF, lines assembled) are dropped at open
// instead of being glued into one scan that never existed; what comes
// after the open is read as sent.
func TestCookedInputDroppedAtOpen(t *testing.T) {
	p := openPTY(t, false)
	p.write(t, "PC-8-1\r\nPC-8-1\r\n") // a frame and its retransmit, before the open
	r := startRig(t, testConfig(p.slaveName), nil)
	waitFor(t, "connected", r.s.Connected)
	p.write(t, "PC-8-2\r\n")
	if rd := r.next(t); string(rd.Data) != "PC-8-2" || rd.Err != nil {
		t.Fatalf("first read {%q, %v}, want {PC-8-2, nil}: cooked input must be dropped, not delivered", rd.Data, rd.Err)
	}
}

// TestFramesAcrossTheOpen is the power-cut case: a scanner keeps
// retransmitting while the gateway starts and opens its port. Over many
// starts, no read ever holds an LF (a CR mangled by cooked mode), and
// every read but a first one cut by the open is a whole frame.
func TestFramesAcrossTheOpen(t *testing.T) {
	whole := regexp.MustCompile(`^F-[0-9]+$`)
	for start := range 20 {
		p := openPTY(t, false)
		ctx, cancel := context.WithCancel(context.Background())
		written := make(chan struct{})
		go func() {
			defer close(written)
			tick := time.NewTicker(time.Millisecond) // the scanner's retransmit pace
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := p.master.Write([]byte(fmt.Sprintf("F-%d\r\n", i))); err != nil {
					return
				}
				<-tick.C
			}
		}()
		r := startRig(t, testConfig(p.slaveName), nil)
		for i := range 3 {
			rd := r.next(t)
			if strings.ContainsAny(string(rd.Data), "\n\r") || (i > 0 && !whole.MatchString(string(rd.Data))) {
				t.Fatalf("start %d, read %d: %q", start, i, rd.Data)
			}
		}
		cancel()
		<-written
		r.stop(t)
		p.close()
	}
}

// TestSettled: Settled turns true once the first open ended, opened (and
// then the port is already in use: ready means configured) or failed (an
// unplugged scanner must not hold readiness back).
func TestSettled(t *testing.T) {
	t.Run("opened", func(t *testing.T) {
		p := newPTY(t)
		s := New(testConfig(p.slaveName), nil, device.NewMetrics(prometheus.NewRegistry()))
		if s.Settled() {
			t.Fatal("settled before Run")
		}
		r := runScanner(t, s)
		waitFor(t, "settled", s.Settled)
		if !s.Connected() {
			t.Fatal("settled while the port is not in use")
		}
		r()
	})
	t.Run("absent", func(t *testing.T) {
		s := New(testConfig(filepath.Join(t.TempDir(), "absent")), slog.New(slog.DiscardHandler), device.NewMetrics(prometheus.NewRegistry()))
		r := runScanner(t, s)
		waitFor(t, "settled", s.Settled)
		if s.Connected() {
			t.Fatal("connected to a missing port")
		}
		r()
	})
}

// runScanner runs s with a discarding handler; the returned func stops it.
func runScanner(t *testing.T, s *Scanner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(context.Context, device.Read) {}) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
