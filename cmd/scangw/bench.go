//go:build bench

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/wire"
)

// benchBuffer measures the buffer on this machine's disk and prints JSON
// figures: the physical reference (raw fdatasync), durable append rates,
// drain rate, memory with a large backlog, and disk use and wear.
func benchBuffer(ctx context.Context, out io.Writer, args []string) error {
	fs := flag.NewFlagSet("bench buffer", flag.ExitOnError)
	dir := fs.String("dir", "", "directory on the disk to measure (default: a temporary one under /var/tmp)")
	backlog := fs.Int("backlog", 1_000_000, "scans in the memory/disk backlog phase")
	writers := fs.Int("writers", 64, "concurrent writers in the burst phase")
	size := fs.Int("size", 300, "payload bytes per scan")
	dur := fs.Duration("duration", 3*time.Second, "length of each rate phase")
	fs.Parse(args)
	setMemoryLimit() // measure what the daemon would use

	if *dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "scangw-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	bn := &bench{ctx: ctx, dir: *dir, dur: *dur, payload: make([]byte, *size),
		res: map[string]any{"dir": *dir, "payload_bytes": *size, "goarch": runtime.GOARCH, "gomaxprocs": runtime.GOMAXPROCS(0)}}
	for i := range bn.payload {
		bn.payload[i] = 'a' + byte(i%26)
	}
	// Physical reference: append + fdatasync of the same size, same disk.
	p50, rate, err := rawFdatasync(filepath.Join(*dir, "raw"), *size, *dur)
	if err != nil {
		return err
	}
	bn.res["raw_fdatasync_per_s"], bn.res["raw_fdatasync_p50_us"] = round(rate), p50
	for _, phase := range []func() error{
		func() error { return bn.appendRates(*writers) },
		func() error { return bn.fillBacklog(*backlog) },
		bn.backlogMemory,
		bn.drainAndReclaim,
	} {
		if err := phase(); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(bn.res)
}

// bench is one run of the buffer bench; its phases add to res.
type bench struct {
	ctx     context.Context
	dir     string
	dur     time.Duration
	payload []byte
	res     map[string]any
}

func (bn *bench) bufferDir() string { return filepath.Join(bn.dir, "buffer") }

func (bn *bench) build(uint64) ([]byte, error) { return bn.payload, nil }

// benchStream is the stream the bench's scans are stored on.
var benchStream = wire.ScanStream("bench")

// appendRates measures durable appends by 1, 8 and writers concurrent
// writers, each for the phase's duration.
func (bn *bench) appendRates(writers int) error {
	b, err := buffer.Open(buffer.Options{Dir: bn.bufferDir()})
	if err != nil {
		return err
	}
	defer b.Close()
	r1, lat1 := bn.appendPhase(b, 1)
	bn.res["append_1_writer_per_s"] = round(r1)
	bn.res["commit_1_writer_p50_us"], bn.res["commit_1_writer_p99_us"] = pct(lat1, 50), pct(lat1, 99)
	r8, _ := bn.appendPhase(b, 8)
	bn.res["append_8_writers_per_s"] = round(r8)
	rn, latn := bn.appendPhase(b, writers)
	bn.res[fmt.Sprintf("append_%d_writers_per_s", writers)] = round(rn)
	bn.res[fmt.Sprintf("commit_%d_writers_p50_us", writers)], bn.res[fmt.Sprintf("commit_%d_writers_p99_us", writers)] = pct(latn, 50), pct(latn, 99)
	return bn.ctx.Err()
}

// appendPhase appends from n writers for the phase's duration and returns
// the rate and every append's latency.
func (bn *bench) appendPhase(b *buffer.Buffer, n int) (float64, []time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(bn.dur)
	for range n {
		wg.Go(func() {
			var lat []time.Duration
			for time.Now().Before(deadline) && bn.ctx.Err() == nil {
				t0 := time.Now()
				if _, err := b.Append(bn.ctx, benchStream, bn.build); err != nil {
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(len(all)) / time.Since(start).Seconds(), all
}

// fillBacklog fills the buffer to backlog scans, as a long outage would,
// and measures the disk it takes and the bytes written per scan.
func (bn *bench) fillBacklog(backlog int) error {
	b, err := buffer.Open(buffer.Options{Dir: bn.bufferDir()})
	if err != nil {
		return err
	}
	defer b.Close()
	w0 := diskWrites()
	n0 := b.Depth()
	var wg sync.WaitGroup
	per := (backlog - int(n0) + 63) / 64
	for range 64 {
		wg.Go(func() {
			for range max(per, 0) {
				if _, err := b.Append(bn.ctx, benchStream, bn.build); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := bn.ctx.Err(); err != nil {
		return err
	}
	appended := b.Depth() - n0
	bn.res["backlog_scans"] = b.Depth()
	if w := diskWrites() - w0; w > 0 && appended > 0 {
		bn.res["disk_bytes_written_per_scan"] = w / appended
	}
	bn.res["disk_peak_mib"] = mib(dirSize(bn.bufferDir()))
	return nil
}

// backlogMemory runs the whole daemon on the backlog, its broker
// unreachable (the outage that built the backlog): what a gateway's RSS
// would be.
func (bn *bench) backlogMemory() error {
	anon, file, heap, err := daemonMemory(bn.ctx, bn.bufferDir())
	if err != nil {
		return err
	}
	bn.res["backlog_daemon_rss_anon_mib"], bn.res["backlog_daemon_rss_file_mib"], bn.res["backlog_daemon_go_heap_mib"] = mib(anon), mib(file), mib(heap)
	return nil
}

// drainAndReclaim drains the backlog the way the uplink does (peek in
// order, ack), then gives the space back.
func (bn *bench) drainAndReclaim() error {
	b, err := buffer.Open(buffer.Options{Dir: bn.bufferDir()})
	if err != nil {
		return err
	}
	defer b.Close()
	start := time.Now()
	var cursor uint64
	drained := 0
	for bn.ctx.Err() == nil {
		es, err := b.Peek(cursor, 256)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			b.Ack(e.Pos)
			cursor = e.Pos + 1
			drained++
		}
	}
	// The last acks ride on a commit: append one scan and ack it.
	if _, err := b.Append(bn.ctx, benchStream, bn.build); err == nil {
		if es, err := b.Peek(cursor, 1); err == nil && len(es) == 1 {
			b.Ack(es[0].Pos)
		}
	}
	bn.res["drain_per_s"] = round(float64(drained) / time.Since(start).Seconds())
	bn.res["disk_after_drain_mib"] = mib(dirSize(bn.bufferDir()))
	t0 := time.Now()
	if _, err := b.Reclaim(bn.ctx); err != nil {
		return err
	}
	bn.res["reclaim_ms"] = time.Since(t0).Milliseconds()
	b.Close()
	bn.res["disk_after_reclaim_mib"] = mib(dirSize(bn.bufferDir()))
	return nil
}
