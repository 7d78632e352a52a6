//go:build bench

package main

// What the bench measures with: the daemon's memory, the disk's own sync
// rate, and the process's and directory's figures.

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scangw/scangw/configs"
)

// daemonMemory runs the daemon in this process on the buffer in dir, with
// its broker unreachable, and reads its memory once it is ready.
func daemonMemory(ctx context.Context, dir string) (anon, file, heap int64, err error) {
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: bench, site: bench}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://127.0.0.1:1", reconnect_min: 1s, reconnect_max: 10s}
http:    {listen: ""}
log:     {level: error}
stations:
  - id: bench
    scanners: [{id: bench-1, port: /dev/scangw-bench-absent}]
`, dir)))
	if err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	// Let it open the buffer (one walk over the backlog) and settle.
	select {
	case err := <-done:
		cancel()
		return 0, 0, 0, fmt.Errorf("daemon: %v", err)
	case <-time.After(5 * time.Second):
	}
	runtime.GC()
	anon, file = rss()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cancel()
	<-done
	return anon, file, int64(ms.HeapAlloc), nil
}

func rawFdatasync(path string, size int, d time.Duration) (p50 int64, perSec float64, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, size)
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := fdatasync(f); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return pct(lat, 50), float64(len(lat)) / time.Since(start).Seconds(), nil
}

func pct(lat []time.Duration, p int) int64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*p/100)].Microseconds()
}

func round(f float64) int64 { return int64(f + 0.5) }

func mib(b int64) float64 { return float64(b*10/(1<<20)) / 10 }

// rss reads this process's anonymous and file-backed resident memory.
func rss() (anon, file int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file
}

// diskWrites is the bytes this process caused to be sent to storage.
func diskWrites() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
