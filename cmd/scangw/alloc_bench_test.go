package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// scansPerOp is what one iteration of BenchmarkScanAllocs sends: enough
// that -benchtime 1x (make bench) gives a steady figure.
const scansPerOp = 1000

// BenchmarkScanAllocs is the allocation guard of the scan path: the whole
// daemon in this process (serial driver, station, buffer, uplink, paho)
// takes scans from a pty, one at a time as a scanner in ACK/NAK mode sends
// them, to a real Mosquitto, and it reports what the process allocated per
// scan. One scan per commit keeps the figure independent of timing (a
// streaming scanner's scans share commits, and their cost). A change that
// doubles allocs/scan shows here; `scangw bench pipeline` is where the
// time goes.
//
//	go test -run '^$' -bench ScanAllocs -benchtime 1x ./cmd/scangw/
func BenchmarkScanAllocs(b *testing.B) {
	broker := mosquittotest.Start(b, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer line.Close()
	cfg, err := configs.Parse(fmt.Appendf(nil, `
gateway: {id: gw-allocs, site: plant-b}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1}
http:    {listen: ""}
log:     {level: error}
stations:
  - id: st
    scanners: [{id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}]
`, b.TempDir(), broker.URL(), line.Path()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	s := &allocScanner{line: line, frame: make([]byte, 0, 32)}
	// Warm up: the port opened, the uplink connected, the caches and
	// pools of every part filled.
	s.send(b, 200)

	var mallocs, bytes uint64
	b.ResetTimer()
	b.ReportAllocs()
	for range b.N {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		s.send(b, scansPerOp)
		runtime.ReadMemStats(&m1)
		mallocs += m1.Mallocs - m0.Mallocs
		bytes += m1.TotalAlloc - m0.TotalAlloc
	}
	b.StopTimer()
	scans := float64(b.N * scansPerOp)
	b.ReportMetric(float64(mallocs)/scans, "allocs/scan")
	b.ReportMetric(float64(bytes)/scans, "B/scan")
}

// allocScanner types unique codes into the pty and waits for each one's
// good byte, allocating nothing itself per scan.
type allocScanner struct {
	line  *serialsim.Pty
	frame []byte
	next  int
	ack   [1]byte
}

func (s *allocScanner) send(b *testing.B, n int) {
	b.Helper()
	// One deadline for the lot: a daemon that stops answering fails the
	// benchmark instead of hanging it.
	if err := s.line.Master().SetReadDeadline(time.Now().Add(time.Minute + time.Duration(n)*20*time.Millisecond)); err != nil {
		b.Fatal(err)
	}
	for range n {
		s.next++
		s.frame = append(strconv.AppendInt(append(s.frame[:0], "ALLOC-"...), int64(s.next), 10), '\r', '\n')
		if _, err := s.line.Master().Write(s.frame); err != nil {
			b.Fatal(err)
		}
		if _, err := s.line.Master().Read(s.ack[:]); err != nil {
			b.Fatalf("scan %d: feedback: %v", s.next, err)
		}
		if s.ack[0] != 0x06 {
			b.Fatalf("scan %d: feedback %#x, want ACK", s.next, s.ack[0])
		}
	}
}
