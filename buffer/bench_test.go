package buffer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// scan300 is a typical 300-byte scan event.
var scan300 = make([]byte, 300)

func benchBuild(uint64) ([]byte, error) { return scan300, nil }

// BenchmarkAppend is one writer appending one scan at a time: every append
// waits for its own sync.
func BenchmarkAppend(b *testing.B) {
	buf := open(b, b.TempDir(), nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := buf.Append(context.Background(), "t", benchBuild); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	report(b, lat)
}

// BenchmarkAppendConcurrent has many writers (stations, scanners) appending
// one scan at a time each; group commit shares syncs between them.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, writers := range []int{8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			buf := open(b, b.TempDir(), nil)
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					local := make([]time.Duration, 0, per)
					for range per {
						t0 := time.Now()
						if _, err := buf.Append(context.Background(), "t", benchBuild); err != nil {
							b.Error(err)
							return
						}
						local = append(local, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, local...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			report(b, lat)
		})
	}
}

// BenchmarkDrain reads and acknowledges a backlog the way the uplink does.
func BenchmarkDrain(b *testing.B) {
	buf := open(b, b.TempDir(), nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.N / 16 {
				buf.Append(context.Background(), "t", benchBuild)
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	var cursor uint64
	n := 0
	for {
		es, err := buf.Peek(cursor, 256)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			buf.Ack(e.Pos)
			cursor = e.Pos + 1
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "scans/s")
}

func report(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "scans/s")
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
