//go:build bench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBenchPipeline runs the pipeline bench briefly against a daemon built
// for the test, once at a rate (with the strace phase) and once as a
// burst, and checks that its JSON holds every figure, each one sensible.
// Nothing about how fast: that is what the bench is for.
func TestBenchPipeline(t *testing.T) {
	bin := buildScangw(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // fields beyond those of every run
	}{{
		name: "rate",
		args: []string{"--rate", "200", "--seconds", "1", "--scanners", "2"},
		want: []string{"rate_per_s", "seconds", "syscalls_per_scan", "syscalls_per_scan_detail", "syscalls_scans"},
	}, {
		name: "burst",
		args: []string{"--burst", "300", "--syscalls=false"},
		want: []string{"burst", "burst_scans_per_s", "burst_acked_per_s"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"--daemon", bin, "--warmup", "250ms", "--dir", t.TempDir()}, tc.args...)
			if err := benchPipeline(context.Background(), &out, args); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", out.Bytes())
			var res map[string]any
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out.Bytes())
			}
			for _, k := range append([]string{
				"go_version", "gomaxprocs", "loadavg_start", "loadavg_end", "mode", "scans", "scanners",
				"cpu_user_us_per_scan", "cpu_system_us_per_scan", "cpu_total_us_per_scan", "broker_cpu_us_per_scan",
				"scan_to_subscriber_p50_us", "scan_to_subscriber_p99_us", "scan_to_ack_p50_us", "scan_to_ack_p99_us",
				"rss_idle_mib", "rss_end_mib", "allocs_per_scan", "alloc_bytes_per_scan", "sent_per_s",
			}, tc.want...) {
				if _, ok := res[k]; !ok {
					t.Errorf("no %q in the JSON", k)
				}
			}
			num := func(k string) float64 { f, _ := res[k].(float64); return f }
			if want := map[string]float64{"rate": 200, "burst": 300}[tc.name]; num("scans") != want {
				t.Errorf("scans = %v, want %v", res["scans"], want)
			}
			for _, k := range []string{"bad_feedback", "subscriber_duplicates", "subscriber_strays"} {
				if _, ok := res[k]; ok {
					t.Errorf("%s = %v: every code should be answered good and arrive once", k, res[k])
				}
			}
			if u, s, tot := num("cpu_user_us_per_scan"), num("cpu_system_us_per_scan"), num("cpu_total_us_per_scan"); u < 0 || s < 0 || tot-(u+s) > 0.2 || (u+s)-tot > 0.2 {
				t.Errorf("CPU per scan: user %v + system %v, total %v", u, s, tot)
			}
			for _, k := range []string{"scan_to_subscriber", "scan_to_ack"} {
				if p50, p99 := num(k+"_p50_us"), num(k+"_p99_us"); p50 <= 0 || p99 < p50 {
					t.Errorf("%s: p50 %v, p99 %v", k, p50, p99)
				}
			}
			// A scan decoded, judged, encoded and published allocates; each
			// allocation is at least a word.
			if a, b := num("allocs_per_scan"), num("alloc_bytes_per_scan"); a < 1 || b < 8*a {
				t.Errorf("allocations per scan: %v, %v bytes", a, b)
			}
			if idle, end := num("rss_idle_mib"), num("rss_end_mib"); idle < 1 || end < 1 {
				t.Errorf("RSS idle %v MiB, at the end %v MiB", idle, end)
			}
			if tc.name != "rate" {
				return
			}
			sc, _ := res["syscalls_per_scan"].(map[string]any)
			for _, k := range []string{"read", "write", "sync", "futex", "epoll_pwait", "other", "total"} {
				if _, ok := sc[k]; !ok {
					t.Errorf("no %q in syscalls_per_scan %v", k, sc)
				}
			}
			// Each scan is read from its pty, committed, answered and
			// published: at least one read, sync and write of some scan.
			for _, k := range []string{"read", "write", "sync"} {
				if f, _ := sc[k].(float64); f <= 0 {
					t.Errorf("syscalls_per_scan[%q] = %v", k, sc[k])
				}
			}
		})
	}
}

// TestBenchPipelineFlags: a flag the bench cannot take is a usage error
// (exit 2) that names it, before anything starts.
func TestBenchPipelineFlags(t *testing.T) {
	for _, args := range [][]string{{"--rate", "0"}, {"--scanners", "-1"}, {"--bogus"}, {"extra"}} {
		err := benchPipeline(context.Background(), &bytes.Buffer{}, args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), strings.TrimLeft(args[0], "-")) {
			t.Errorf("%v: %v, want a usage error naming it", args, err)
		}
	}
}

// TestProfileOnSignal: the daemon's profile hook profiles from one signal
// to the next and writes the profile whole (gzip, as pprof writes it).
func TestProfileOnSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	sig := make(chan os.Signal)
	done := make(chan error, 1)
	go func() { done <- profileOnSignal(path, sig) }()
	sig <- syscall.SIGUSR1
	sig <- syscall.SIGUSR1
	close(sig)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("profile is not gzip: % x", data[:min(len(data), 8)])
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Error("temporary file left behind")
	}
}

func TestParseStraceSummary(t *testing.T) {
	const table = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.10    0.004010          10       401           write
 30.00    0.003000           5       600        12 futex
 20.00    0.002000           2      1000           epoll_pwait
  9.90    0.000990          99        10           fdatasync
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000                  2011        12 total
`
	got, err := parseStraceSummary(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"write": 401, "futex": 600, "epoll_pwait": 1000, "fdatasync": 10}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d calls, want %d", k, got[k], v)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP go_memstats_mallocs_total Total number of mallocs.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 1.234567e+06
scangw_buffer_depth_scans 0
scangw_station_scans_total{station="a",verdict="accepted"} 3
scangw_station_scans_total{station="b",verdict="a}b"} 4
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_memstats_mallocs_total"] != 1234567 || m["scangw_station_scans_total"] != 7 {
		t.Fatalf("%v", m)
	}
	if v, ok := m["scangw_buffer_depth_scans"]; !ok || v != 0 {
		t.Fatalf("depth %v, %v", v, ok)
	}
}

// FuzzBenchParsers: the parsers of the daemon's output (its scan events,
// /metrics, strace's table) take any bytes without panicking, and a code
// the bench wrote is found again.
func FuzzBenchParsers(f *testing.F) {
	f.Add([]byte(`{"data":{"raw":"` + benchCode(1, 42) + `","seq":1}}`))
	f.Add([]byte(`"raw":"BENCH1--5"`))
	f.Add([]byte("go_memstats_mallocs_total{a=\"}\"} 1e3\n# x\n"))
	f.Add([]byte(" 40.10    0.004010          10       401           write\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if id, k, ok := parseBenchCode(in); ok && (id < 0 || k < 0) {
			t.Fatalf("%q: load %d, code %d", in, id, k)
		}
		parseMetrics(bytes.NewReader(in))
		parseStraceSummary(bytes.NewReader(in))
		id, k := len(in)%1000, len(in)
		if gid, gk, ok := parseBenchCode([]byte(`"raw":"` + benchCode(id, k) + `"`)); !ok || gid != id || gk != k {
			t.Fatalf("code %d of load %d read back as %d, %d, %v", k, id, gid, gk, ok)
		}
	})
}
