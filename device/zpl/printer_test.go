package zpl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/device/zpl/zpltest"
)

func job(n int) []byte {
	return fmt.Appendf(nil, "^XA^FO10,10^A0N,30,30^FH_^FDjob %d_5E^FS^XZ", n)
}

func newPrinter(t *testing.T, cfg zpl.Config) *zpl.Printer {
	t.Helper()
	p, err := zpl.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  zpl.Config
		msgs []string
	}{
		{"addr", zpl.Config{Addr: "printer:9100"}, nil},
		{"device", zpl.Config{Device: "/dev/usb/lp0"}, nil},
		{"neither", zpl.Config{}, []string{"addr or device is required"}},
		{"both", zpl.Config{Addr: "p:9100", Device: "/dev/usb/lp0"}, []string{"exclusive"}},
		{"no port", zpl.Config{Addr: "printer"}, []string{"addr:"}},
		{"relative device", zpl.Config{Device: "usb/lp0"}, []string{"device:"}},
		{"every bad field", zpl.Config{Addr: "p", DialTimeout: -1, WriteTimeout: -1, ReplyTimeout: -1},
			[]string{"addr:", "dial_timeout", "write_timeout", "reply_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.msgs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, m := range tc.msgs {
				if err == nil || !strings.Contains(err.Error(), m) {
					t.Errorf("Validate = %v, want %q", err, m)
				}
			}
			if _, nerr := zpl.New(tc.cfg, nil); nerr == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

// A nil Send means the printer has the job: the fake has recorded it by
// the time Send returns, without waiting.
func TestSendInOrder(t *testing.T) {
	fake := zpltest.Start(t)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr()})
	var want [][]byte
	for i := range 5 {
		if err := p.Send(t.Context(), job(i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, job(i))
		if got := fake.Jobs(); len(got) != i+1 {
			t.Fatalf("after Send %d the printer holds %d jobs", i, len(got))
		}
	}
	// Two formats in one job are two labels.
	if err := p.Send(t.Context(), append(job(5), job(6)...)); err != nil {
		t.Fatal(err)
	}
	want = append(want, job(5), job(6))
	got, err := fake.WaitJobs(t.Context(), len(want))
	if err != nil {
		t.Fatal(err)
	}
	if !equalJobs(got, want) {
		t.Fatalf("jobs = %q, want %q", got, want)
	}
}

func equalJobs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// The printer goes away: Send fails as unreachable, the jobs it had are
// kept; it comes back on the same port and the next Send works.
func TestSendPrinterGoneAndBack(t *testing.T) {
	fake := zpltest.Start(t)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr(), DialTimeout: time.Second})
	if err := p.Send(t.Context(), job(1)); err != nil {
		t.Fatal(err)
	}
	fake.Stop()
	err := p.Send(t.Context(), job(2))
	if !errors.Is(err, zpl.ErrUnreachable) || !strings.Contains(err.Error(), fake.Addr()) {
		t.Fatalf("Send to a stopped printer = %v, want ErrUnreachable naming %s", err, fake.Addr())
	}
	if zpl.ErrorReason(err) != "unreachable" {
		t.Fatalf("ErrorReason = %q", zpl.ErrorReason(err))
	}
	if _, err := p.Status(t.Context()); !errors.Is(err, zpl.ErrUnreachable) {
		t.Fatalf("Status of a stopped printer = %v", err)
	}
	fake.Restart()
	if err := p.Send(t.Context(), job(3)); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	if got, want := fake.Jobs(), [][]byte{job(1), job(3)}; !equalJobs(got, want) {
		t.Fatalf("jobs = %q, want %q", got, want)
	}
}

// Stop takes what a connection had received: a job written before Stop
// and not yet read by the fake is recorded, not lost. (A connection the
// fake had not accepted yet is reset instead: its sender sees Send fail.)
func TestStopKeepsReceivedData(t *testing.T) {
	fake := zpltest.Start(t)
	c, err := net.Dial("tcp", fake.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A status exchange first: the fake has taken the connection.
	if _, err := c.Write([]byte("~HS")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(zpltest.HostStatus(zpl.Status{})))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(job(1), "^XA^FDpartial"...)); err != nil {
		t.Fatal(err)
	}
	// The fake may not have read the bytes yet; Stop must get them.
	fake.Stop()
	if got := fake.Jobs(); !equalJobs(got, [][]byte{job(1)}) {
		t.Fatalf("jobs after Stop = %q, want the one whole job", got)
	}
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the closed connection: %v", err)
	}
}

func TestStatusThroughFake(t *testing.T) {
	fake := zpltest.Start(t)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr()})
	for _, tc := range []struct {
		name   string
		state  zpl.Status
		reason string
	}{
		{"ready", ready, ""},
		{"paper out", zpl.Status{PaperOut: true, Paused: true}, "paper_out"},
		{"head open", zpl.Status{HeadOpen: true}, "head_open"},
		{"paused", zpl.Status{Paused: true, FormatsInBuffer: 2}, "paused"},
		{"ribbon out", zpl.Status{RibbonOut: true, ThermalTransfer: true}, "ribbon_out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.SetState(tc.state)
			st, err := p.Status(t.Context())
			if st != tc.state {
				t.Fatalf("Status = %+v, want %+v", st, tc.state)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var nr *zpl.NotReadyError
			if !errors.As(err, &nr) || !errors.Is(err, zpl.ErrNotReady) || nr.Status.Reason() != tc.reason {
				t.Fatalf("Status error = %v, want not ready: %s", err, tc.reason)
			}
			if zpl.ErrorReason(err) != tc.reason {
				t.Fatalf("ErrorReason = %q, want %q", zpl.ErrorReason(err), tc.reason)
			}
		})
	}
	// Status and jobs share the printer: a job after a status request
	// still arrives.
	if err := p.Send(t.Context(), job(1)); err != nil {
		t.Fatal(err)
	}
	if got := fake.Jobs(); !equalJobs(got, [][]byte{job(1)}) {
		t.Fatalf("jobs = %q", got)
	}
}

func TestStatusNoReply(t *testing.T) {
	fake := zpltest.Start(t)
	fake.SetSilent(true)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr(), ReplyTimeout: 100 * time.Millisecond})
	_, err := p.Status(t.Context())
	if !errors.Is(err, zpl.ErrNoReply) || zpl.ErrorReason(err) != "no_status" {
		t.Fatalf("Status of a silent printer = %v, want ErrNoReply", err)
	}
}

func TestStatusGarbage(t *testing.T) {
	addr := serve(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 3))
		c.Write([]byte("\x02garbage\x03\x02x\x03\x02y\x03"))
	})
	p := newPrinter(t, zpl.Config{Addr: addr})
	_, err := p.Status(t.Context())
	if err == nil || errors.Is(err, zpl.ErrNoReply) || errors.Is(err, zpl.ErrUnreachable) || !strings.Contains(err.Error(), "string 1") {
		t.Fatalf("Status = %v, want a parse error", err)
	}
}

// serve runs handle for every connection to a loopback listener, for
// printers the fake does not play.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// A printer that closes without reading the job has not taken it.
func TestSendPrinterClosesUnread(t *testing.T) {
	addr := serve(t, func(net.Conn) {})
	p := newPrinter(t, zpl.Config{Addr: addr, WriteTimeout: 300 * time.Millisecond})
	if err := p.Send(t.Context(), job(1)); !errors.Is(err, zpl.ErrUnreachable) {
		t.Fatalf("Send to a printer that dropped the job = %v, want ErrUnreachable", err)
	}
}

// A printer that reads the job but keeps the connection open has it once
// its TCP stack acknowledged every byte.
func TestSendPrinterKeepsConnection(t *testing.T) {
	got := make(chan []byte, 1)
	release := make(chan struct{})
	addr := serve(t, func(c net.Conn) {
		var b []byte
		buf := make([]byte, 4096)
		for !bytes.HasSuffix(b, []byte("^XZ")) {
			n, err := c.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- b
		<-release
	})
	defer close(release)
	p := newPrinter(t, zpl.Config{Addr: addr, WriteTimeout: 200 * time.Millisecond})
	if err := p.Send(t.Context(), job(1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if b := <-got; !bytes.Equal(b, job(1)) {
		t.Fatalf("printer read %q", b)
	}
}

func TestSendCanceled(t *testing.T) {
	fake := zpltest.Start(t)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := p.Send(ctx, job(1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, zpl.ErrUnreachable) {
		t.Fatalf("Send with a canceled ctx = %v", err)
	}
	if len(fake.Jobs()) != 0 {
		t.Fatal("a canceled Send reached the printer")
	}
}

func TestWaitJobsCtx(t *testing.T) {
	fake := zpltest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if jobs, err := fake.WaitJobs(ctx, 1); !errors.Is(err, context.Canceled) || len(jobs) != 0 {
		t.Fatalf("WaitJobs = %q, %v", jobs, err)
	}
}

// A USB printer is a device file: a FIFO stands in for /dev/usb/lp0.
func TestSendDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "lp0")
	if err := syscall.Mkfifo(dev, 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPrinter(t, zpl.Config{Device: dev})

	// Nobody has the device open: the printer is not there.
	if err := p.Send(t.Context(), job(1)); !errors.Is(err, zpl.ErrUnreachable) {
		t.Fatalf("Send to a device without a reader = %v, want ErrUnreachable", err)
	}

	r, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		if err := p.Send(t.Context(), job(i)); err != nil {
			t.Fatal(err)
		}
	}
	want := append(append(job(0), job(1)...), job(2)...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("device got %q, want %q", got, want)
	}

	if _, err := p.Status(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Status of a device = %v, want ErrUnsupported", err)
	}
	missing := newPrinter(t, zpl.Config{Device: filepath.Join(t.TempDir(), "lp9")})
	if err := missing.Send(t.Context(), job(1)); !errors.Is(err, zpl.ErrUnreachable) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Send to a missing device = %v", err)
	}
}

// Jobs sent while the printer goes away and comes back, again and again,
// arrive once each and in order when every failed Send is repeated: a
// Send that returned nil was recorded, and one that failed was not.
func TestSendAcrossOutages(t *testing.T) {
	fake := zpltest.Start(t)
	p := newPrinter(t, zpl.Config{Addr: fake.Addr(), DialTimeout: time.Second})
	const jobs, cycles = 200, 20

	var mu sync.Mutex
	gen, restarted := 0, make(chan struct{})
	done := make(chan struct{})
	// sent ends the outages once the sender is through, so a lost job
	// fails the test instead of hanging it.
	sent, allSent := context.WithCancel(t.Context())
	defer allSent()
	go func() {
		defer close(done)
		for c := range cycles {
			if _, err := fake.WaitJobs(sent, (c+1)*jobs/(cycles+1)); err != nil {
				return
			}
			fake.Stop()
			fake.Restart()
			mu.Lock()
			gen++
			close(restarted)
			restarted = make(chan struct{})
			mu.Unlock()
		}
	}()
	failures := 0
	for i := range jobs {
		for {
			mu.Lock()
			g, ch := gen, restarted
			mu.Unlock()
			err := p.Send(t.Context(), job(i))
			if err == nil {
				break
			}
			if !errors.Is(err, zpl.ErrUnreachable) {
				t.Fatalf("job %d: %v", i, err)
			}
			failures++
			mu.Lock()
			if gen == g {
				mu.Unlock()
				<-ch // the printer comes back
			} else {
				mu.Unlock()
			}
		}
	}
	allSent()
	<-done
	got := fake.Jobs()
	if len(got) != jobs {
		t.Fatalf("%d jobs arrived, want %d", len(got), jobs)
	}
	for i, j := range got {
		if !bytes.Equal(j, job(i)) {
			t.Fatalf("job %d is %q, want %q", i, j, job(i))
		}
	}
	t.Logf("%d failed sends over %d outages", failures, cycles)
}
