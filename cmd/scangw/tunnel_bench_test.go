package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// BenchmarkTCPReader is a fast tunnel: one fixed reader the gateway dials
// streams frames at 2,000 a second (every label read twice, the repeat
// suppressed by debounce) through the whole daemon to a real broker. It
// reports the daemon's CPU per frame (this process: the daemon and the
// cheap fake reader; the broker is apart) and read→ACK latency.
//
//	go test -run '^$' -bench TCPReader -benchtime 1x ./cmd/scangw/
func BenchmarkTCPReader(b *testing.B) {
	const (
		rate    = 2000
		seconds = 5
		frames  = rate * seconds
	)
	broker := mosquittotest.Start(b, mosquittotest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-bench, site: plant-b}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1}
http:    {listen: ""}
log:     {level: error}
stations:
  - id: tunnel-1
    scanners:
      - {id: top, type: tcp, connect: %q, debounce: 1s, feedback: {good: "\x06", bad: "\x15"}}
`, b.TempDir(), broker.URL(), ln.Addr().String())))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
		conn, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		lat, cpu, elapsed := streamFrames(b, conn, rate, frames)
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "frames/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/frame")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-ack-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-ack-µs")
	}
}

// streamFrames sends n frames at rate a second, each label twice in a row,
// without waiting for answers (a tunnel does not), and returns each
// frame's read→ACK latency, the process's CPU time meanwhile, and how long
// it took.
func streamFrames(b *testing.B, conn net.Conn, rate, n int) ([]time.Duration, time.Duration, time.Duration) {
	sent := make(chan time.Time, n)
	acks := make(chan []time.Duration, 1)
	go func() {
		var lat []time.Duration
		buf := make([]byte, 1)
		conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		for range n {
			if _, err := io.ReadFull(conn, buf); err != nil || buf[0] != 0x06 {
				break
			}
			lat = append(lat, time.Since(<-sent))
		}
		acks <- lat
	}()
	cpu0 := cpuTime()
	start := time.Now()
	// Frame i is due at start + i/rate; a sender that fell behind sends
	// what is due at once, as a reader with a queue of results does.
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait) // pacing the sender, not synchronisation
		}
		sent <- time.Now()
		if _, err := fmt.Fprintf(conn, "LBL-%08d\r\n", i/2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "sent/s")
	lat := <-acks
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if len(lat) != n {
		b.Fatalf("%d of %d frames acknowledged", len(lat), n)
	}
	return lat, cpu, elapsed
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
