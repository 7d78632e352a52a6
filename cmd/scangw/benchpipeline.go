//go:build bench

package main

// scangw bench pipeline: the whole daemon path measured from outside the
// daemon. The daemon runs as a child process (this binary, or --daemon),
// so that its CPU, memory and system calls are its own: the simulated
// scanners (ptys), the subscriber and the broker are other processes or
// belong to the bench.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
)

const benchPipelineUsage = `usage: scangw bench pipeline [--rate N] [--seconds N] [--scanners N]
                            [--burst N] [--cpuprofile FILE] [--sync-delay D]
                            [--syscalls=false] [--warmup D] [--daemon BIN] [--dir DIR]

Runs the daemon (this binary, or --daemon BIN) as a child process with a
real Mosquitto, a QoS 1 subscriber and pty scanners that wait for no ACK,
and prints JSON: the daemon's CPU per scan (user, system), scan→subscriber
and scan→ACK latency, RSS, allocations per scan, and, in a separate phase
under strace (--syscalls=false skips it), system calls per scan by kind.
--rate codes a second over all scanners for --seconds; --burst N writes N
codes to the ptys as fast as they take them instead. --cpuprofile writes
the daemon's CPU profile of the measured window (the daemon must be a
-tags bench build). --sync-delay adds D to every fsync/fdatasync/msync of
the daemon (strace fault injection), as a slow SD card would.
`

// The daemon the bench configures: topics and ids the subscriber expects.
const (
	benchSite    = "bench"
	benchGateway = "gw-bench"
	benchStation = "bench"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture scangw is built for.
const clockTicks = 100

// benchPipeline runs the pipeline bench and prints its JSON on out.
func benchPipeline(ctx context.Context, out io.Writer, args []string) error {
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := pipelineOptions{}
	fs.IntVar(&o.rate, "rate", 200, "codes per second over all scanners")
	fs.IntVar(&o.seconds, "seconds", 20, "length of the measured window at --rate")
	fs.IntVar(&o.scanners, "scanners", 1, "pty scanners (one station)")
	fs.IntVar(&o.burst, "burst", 0, "instead of --rate: write N codes as fast as the ptys take them")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write the daemon's CPU profile of the measured window to FILE")
	fs.DurationVar(&o.syncDelay, "sync-delay", 0, "add D to each of the daemon's fsync, fdatasync and msync (a slow disk)")
	fs.BoolVar(&o.syscalls, "syscalls", true, "count system calls per scan under strace, in a phase of their own")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "scans at --rate before anything is measured")
	fs.StringVar(&o.daemon, "daemon", "", "scangw binary to measure (default: this one)")
	fs.StringVar(&o.dir, "dir", "", "directory for the buffer and the broker (default: a temporary one under /var/tmp)")
	if err := fs.Parse(args); err != nil {
		return badUsage("%v\n\n%s", err, benchPipelineUsage)
	}
	if fs.NArg() > 0 {
		return badUsage("unexpected argument %q\n\n%s", fs.Arg(0), benchPipelineUsage)
	}
	var bad []string
	if o.rate <= 0 {
		bad = append(bad, "--rate must be positive")
	}
	if o.seconds <= 0 && o.burst == 0 {
		bad = append(bad, "--seconds must be positive")
	}
	if o.scanners <= 0 {
		bad = append(bad, "--scanners must be positive")
	}
	if o.burst < 0 {
		bad = append(bad, "--burst must not be negative")
	}
	if o.syncDelay < 0 {
		bad = append(bad, "--sync-delay must not be negative")
	}
	if len(bad) > 0 {
		return badUsage("%s\n\n%s", strings.Join(bad, "; "), benchPipelineUsage)
	}
	if o.daemon == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
		o.daemon = exe
	}
	if o.cpuprofile != "" {
		p, err := filepath.Abs(o.cpuprofile)
		if err != nil {
			return err
		}
		o.cpuprofile = p
	}
	if o.dir == "" {
		// /var/tmp, not /tmp: the buffer must sync to a disk, not tmpfs.
		d, err := os.MkdirTemp("/var/tmp", "scangw-bench-pipeline-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	p := &pipeline{ctx: ctx, o: o, res: map[string]any{}}
	err := p.run()
	p.close()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(p.res)
}

type pipelineOptions struct {
	rate, seconds, scanners, burst int
	cpuprofile, daemon, dir        string
	syncDelay, warmup              time.Duration
	syscalls                       bool
}

// pipeline is one run of the bench: its processes, scanners, and results.
type pipeline struct {
	ctx context.Context
	o   pipelineOptions
	res map[string]any

	broker  *benchBroker
	lines   []*serialsim.Pty
	sub     mqtt.Client
	child   *exec.Cmd // the daemon, or strace running it (--sync-delay)
	pid     int       // the daemon's
	exited  chan struct{}
	httpURL string
	logPath string

	cur     atomic.Pointer[benchLoad] // the load the subscriber and ACK readers account to
	readers sync.WaitGroup
	strays  atomic.Int64 // subscriber messages of no load in progress
}

func (p *pipeline) run() error {
	o := p.o
	p.res["go_version"] = runtime.Version()
	p.res["gomaxprocs"] = runtime.GOMAXPROCS(0)
	p.res["num_cpu"] = runtime.NumCPU()
	p.res["goarch"] = runtime.GOARCH
	p.res["loadavg_start"] = loadAverage()
	p.res["scanners"] = o.scanners
	p.res["dir"] = o.dir
	if o.burst > 0 {
		p.res["mode"], p.res["burst"] = "burst", o.burst
	} else {
		p.res["mode"], p.res["rate_per_s"], p.res["seconds"] = "rate", o.rate, o.seconds
	}
	syscalls := o.syscalls
	if syscalls && o.syncDelay > 0 {
		// The daemon already runs under the strace that delays its syncs,
		// and a process has one tracer.
		syscalls = false
		p.res["syscalls_skipped"] = "--sync-delay runs the daemon under strace"
	}
	if syscalls || o.syncDelay > 0 {
		if _, err := exec.LookPath("strace"); err != nil {
			return errors.New("strace not found: install it (apt-get install strace), or pass --syscalls=false")
		}
	}
	var err error
	if p.broker, err = startBenchBroker(p.ctx, filepath.Join(o.dir, "mosquitto")); err != nil {
		return err
	}
	for range o.scanners {
		l, err := serialsim.Open()
		if err != nil {
			return err
		}
		p.lines = append(p.lines, l)
	}
	if err := p.subscribe(); err != nil {
		return err
	}
	if err := p.startDaemon(); err != nil {
		return err
	}
	for j, l := range p.lines {
		p.readers.Go(func() { p.readFeedback(j, l) })
	}
	p.res["rss_idle_mib"] = mib(vmRSS(p.pid))

	if o.warmup > 0 {
		warm := newBenchLoad(0, max(1, int(o.warmup.Seconds()*float64(o.rate))), o.scanners)
		if err := p.drive(warm, o.rate); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	cost, err := p.scrapeCost()
	if err != nil {
		return err
	}
	n, rate := o.burst, 0
	if n == 0 {
		n, rate = o.rate*o.seconds, o.rate
	}
	if err := p.measure(newBenchLoad(1, n, o.scanners), rate, cost); err != nil {
		return err
	}
	p.res["rss_end_mib"] = mib(vmRSS(p.pid))
	if syscalls {
		// A shorter phase: strace slows the daemon, and the counts per
		// scan settle within seconds.
		sn := min(n, 5000)
		if rate > 0 {
			sn = rate * min(o.seconds, 10)
		}
		if err := p.countSyscalls(newBenchLoad(2, sn, o.scanners), rate); err != nil {
			return err
		}
	}
	if s := p.strays.Load(); s > 0 {
		p.res["subscriber_strays"] = s
	}
	p.res["loadavg_end"] = loadAverage()
	return nil
}

// close stops what run started, the daemon first (it would otherwise
// lose its broker and scanners and complain).
func (p *pipeline) close() {
	if p.child != nil {
		p.stopDaemon()
	}
	for _, l := range p.lines {
		l.Close() // ends the feedback readers
	}
	p.readers.Wait()
	if p.sub != nil {
		p.sub.Disconnect(100)
	}
	if p.broker != nil {
		p.broker.stop()
	}
}

// measure runs load l as the measured window: the daemon's CPU, its
// allocations, and the latencies.
func (p *pipeline) measure(l *benchLoad, rate int, cost scrapeCost) error {
	m0, err := p.scrape()
	if err != nil {
		return err
	}
	u0, s0 := procCPU(p.pid)
	b0u, b0s := procCPU(p.broker.pid())
	if p.o.cpuprofile != "" {
		syscall.Kill(p.pid, syscall.SIGUSR1) // starts the profile
	}
	start := time.Now()
	if err := p.send(l, rate); err != nil {
		return err
	}
	sent := time.Since(start)
	if err := p.await(l); err != nil {
		return err
	}
	m1, scrapes, err := p.drained()
	if err != nil {
		return err
	}
	u1, s1 := procCPU(p.pid)
	b1u, b1s := procCPU(p.broker.pid())
	if p.o.cpuprofile != "" {
		syscall.Kill(p.pid, syscall.SIGUSR1) // stops and writes it
		if err := p.awaitProfile(); err != nil {
			return err
		}
		os.Remove(p.o.cpuprofile + armedSuffix)
		p.res["cpuprofile"] = p.o.cpuprofile
	}

	n := float64(l.n)
	r := p.res
	r["scans"] = l.n
	r["cpu_user_us_per_scan"] = round1(ticksUS(u1-u0) / n)
	r["cpu_system_us_per_scan"] = round1(ticksUS(s1-s0) / n)
	r["cpu_total_us_per_scan"] = round1(ticksUS(u1-u0+s1-s0) / n)
	r["broker_cpu_us_per_scan"] = round1(ticksUS(b1u-b0u+b1s-b0s) / n)
	// Each scrape in the window (the first, after it read the counters,
	// and the polls for the drained buffer) allocated in the daemon too.
	mallocs := m1["go_memstats_mallocs_total"] - m0["go_memstats_mallocs_total"] - float64(scrapes)*cost.mallocs
	bytes := m1["go_memstats_alloc_bytes_total"] - m0["go_memstats_alloc_bytes_total"] - float64(scrapes)*cost.bytes
	r["allocs_per_scan"] = round1(mallocs / n)
	r["alloc_bytes_per_scan"] = round1(bytes / n)
	if c := m1["scangw_mqtt_publish_latency_seconds_count"] - m0["scangw_mqtt_publish_latency_seconds_count"]; c > 0 {
		// The daemon's own view: queued to PUBACK, as its histogram has it.
		r["daemon_publish_latency_mean_us"] = round1((m1["scangw_mqtt_publish_latency_seconds_sum"] - m0["scangw_mqtt_publish_latency_seconds_sum"]) / c * 1e6)
	}
	sub, ack := l.latencies()
	r["scan_to_subscriber_p50_us"], r["scan_to_subscriber_p99_us"] = pct(sub, 50), pct(sub, 99)
	r["scan_to_ack_p50_us"], r["scan_to_ack_p99_us"] = pct(ack, 50), pct(ack, 99)
	r["sent_per_s"] = round(n / sent.Seconds())
	if rate == 0 {
		// Until the last one reached the subscriber, and was acknowledged
		// to its scanner (that is, committed).
		r["burst_scans_per_s"] = round(n / time.Duration(l.lastSub.Load()-l.firstSent.Load()).Seconds())
		r["burst_acked_per_s"] = round(n / time.Duration(l.lastAck.Load()-l.firstSent.Load()).Seconds())
	}
	if b := l.bad.Load(); b > 0 {
		r["bad_feedback"] = b
	}
	if d := l.dups.Load(); d > 0 {
		r["subscriber_duplicates"] = d
	}
	return nil
}

// drive runs load l at rate (0: a burst) to the end, nothing measured.
func (p *pipeline) drive(l *benchLoad, rate int) error {
	if err := p.send(l, rate); err != nil {
		return err
	}
	if err := p.await(l); err != nil {
		return err
	}
	_, _, err := p.drained()
	return err
}

// send writes load l's codes: at rate a second, code k due at k/rate
// after the start, or (rate 0) each scanner's share as fast as its pty
// takes it.
func (p *pipeline) send(l *benchLoad, rate int) error {
	p.cur.Store(l)
	frame := func(k int) []byte { return []byte(benchCode(l.id, k) + "\r\n") }
	l.firstSent.Store(time.Now().UnixNano())
	if rate == 0 {
		var wg sync.WaitGroup
		errs := make([]error, len(p.lines))
		for j, line := range p.lines {
			wg.Go(func() {
				for k := j; k < l.n && p.ctx.Err() == nil; k += len(p.lines) {
					l.sent[k].Store(time.Now().UnixNano())
					if _, err := line.Master().Write(frame(k)); err != nil {
						errs[j] = fmt.Errorf("scanner %d: write: %w", j+1, err)
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(append(errs, p.ctx.Err())...)
	}
	start := time.Now()
	for k := range l.n {
		if wait := time.Until(start.Add(time.Duration(k) * time.Second / time.Duration(rate))); wait > 0 {
			// Pacing the scanners, not synchronisation. A sender that fell
			// behind sends what is due at once, as a queue of reads would.
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return p.ctx.Err()
			}
		}
		l.sent[k].Store(time.Now().UnixNano())
		if _, err := p.lines[k%len(p.lines)].Master().Write(frame(k)); err != nil {
			return fmt.Errorf("scanner %d: write: %w", k%len(p.lines)+1, err)
		}
	}
	return nil
}

// await waits until every code of l reached the subscriber and its
// scanner got its feedback byte.
func (p *pipeline) await(l *benchLoad) error {
	// Generous: a loaded machine or a slow --sync-delay; nothing here is
	// judged by time.
	limit := time.Minute + time.Duration(l.n)*10*time.Millisecond
	deadline := time.Now().Add(limit)
	for !l.complete() {
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d of %d codes reached the subscriber, %d feedback bytes\n%s",
				limit, l.arrived.Load(), l.n, l.feedbacks(), p.daemonLog())
		}
		if err := p.alive(); err != nil {
			return err
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	return nil
}

// drained polls the daemon's metrics until its buffer is empty (every
// delete committed, which is part of a scan's cost) and returns the last
// scrape and how many scrapes before it allocated in the window.
func (p *pipeline) drained() (map[string]float64, int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for scrapes := 1; ; scrapes++ {
		m, err := p.scrape()
		if err != nil {
			return nil, 0, err
		}
		if m["scangw_buffer_depth_scans"] == 0 {
			return m, scrapes, nil
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("the daemon's buffer still holds %v scans after 30s", m["scangw_buffer_depth_scans"])
		}
		select {
		case <-time.After(20 * time.Millisecond): // polling a metric
		case <-p.ctx.Done():
			return nil, 0, p.ctx.Err()
		}
	}
}

// scrapeCost is what one /metrics scrape allocates in the daemon.
type scrapeCost struct{ mallocs, bytes float64 }

// scrapeCost measures a scrape of the idle daemon: the counters are read
// as a scrape begins, so the difference between two scrapes in a row is
// what the first one allocated after it read them.
func (p *pipeline) scrapeCost() (scrapeCost, error) {
	var best scrapeCost
	prev, err := p.scrape()
	if err != nil {
		return best, err
	}
	for i := range 3 {
		m, err := p.scrape()
		if err != nil {
			return best, err
		}
		c := scrapeCost{m["go_memstats_mallocs_total"] - prev["go_memstats_mallocs_total"], m["go_memstats_alloc_bytes_total"] - prev["go_memstats_alloc_bytes_total"]}
		if i == 0 || c.mallocs < best.mallocs { // the least: background work only adds
			best = c
		}
		prev = m
	}
	return best, nil
}

// countSyscalls runs load l with strace attached to the daemon and
// reports its system calls per scan by kind.
func (p *pipeline) countSyscalls(l *benchLoad, rate int) error {
	out := filepath.Join(p.o.dir, "strace-c.txt")
	st := exec.Command("strace", "-f", "-c", "-q", "-o", out, "-p", strconv.Itoa(p.pid))
	var stderr bytes.Buffer
	st.Stderr = &stderr
	if err := st.Start(); err != nil {
		return fmt.Errorf("strace: %w", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		st.Process.Signal(syscall.SIGINT) // detaches and writes the summary
		err := st.Wait()
		// strace ends itself with the signal it was stopped by, once it
		// has detached and written the summary.
		if ws, ok := st.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("strace: %v: %s", err, stderr.Bytes())
		}
		return nil
	}
	defer stop()
	if err := awaitTraced(p.pid, 10*time.Second); err != nil {
		return fmt.Errorf("strace -p %d: %v: %s", p.pid, err, stderr.Bytes())
	}
	if err := p.drive(l, rate); err != nil {
		return fmt.Errorf("syscall phase: %w", err)
	}
	if err := stop(); err != nil {
		return err
	}
	counts, err := readStraceSummary(out)
	if err != nil {
		return err
	}
	kinds := map[string]float64{}
	detail := map[string]float64{}
	n := float64(l.n)
	for name, c := range counts {
		kinds[syscallKind(name)] += float64(c) / n
		kinds["total"] += float64(c) / n
		detail[name] = round2(float64(c) / n)
	}
	for k, v := range kinds {
		kinds[k] = round2(v)
	}
	p.res["syscalls_per_scan"] = kinds
	p.res["syscalls_per_scan_detail"] = detail
	p.res["syscalls_scans"] = l.n
	return nil
}

// syscallKind sorts a system call into the kinds the bench reports.
func syscallKind(name string) string {
	switch name {
	case "write", "writev", "pwrite64", "pwritev", "pwritev2":
		return "write"
	case "read", "readv", "pread64", "preadv", "preadv2":
		return "read"
	case "fsync", "fdatasync", "msync", "sync_file_range":
		return "sync"
	case "futex":
		return "futex"
	case "epoll_pwait", "epoll_pwait2", "epoll_wait":
		return "epoll_pwait"
	}
	return "other"
}

// readStraceSummary reads strace -c's table: calls by system call.
func readStraceSummary(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts, err := parseStraceSummary(f)
	if err != nil {
		return nil, err
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("%s: no system calls counted", path)
	}
	return counts, nil
}

// parseStraceSummary parses strace -c's table.
func parseStraceSummary(r io.Reader) (map[string]int64, error) {
	counts := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// "% time  seconds  usecs/call  calls  [errors]  syscall"
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[len(fs)-1] == "total" || fs[len(fs)-1] == "syscall" {
			continue
		}
		if _, err := strconv.ParseFloat(fs[0], 64); err != nil {
			continue
		}
		calls, err := strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			continue
		}
		counts[fs[len(fs)-1]] += calls
	}
	return counts, sc.Err()
}

// awaitTraced waits until every thread of pid has a tracer.
func awaitTraced(pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		traced := 0
		for _, t := range tasks {
			data, _ := os.ReadFile(t)
			if m := tracerPid.FindSubmatch(data); m != nil && string(m[1]) != "0" {
				traced++
			}
		}
		if len(tasks) > 0 && traced == len(tasks) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d threads traced after %v", traced, len(tasks), limit)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc
	}
}

var tracerPid = regexp.MustCompile(`(?m)^TracerPid:\s+(\d+)`)

// subscribe connects the bench's subscriber to the daemon's scans topic.
func (p *pipeline) subscribe() error {
	topic := wire.TopicsFor("scangw/v1", benchSite, benchGateway).Of(wire.ScanStream(benchStation))
	opts := mqtt.NewClientOptions().
		AddBroker(p.broker.url()).
		SetClientID(fmt.Sprintf("scangw-bench-%d", os.Getpid())).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).
		SetDefaultPublishHandler(p.onMessage)
	p.sub = mqtt.NewClient(opts)
	if tok := p.sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscriber: connect to %s: %v", p.broker.url(), tok.Error())
	}
	if tok := p.sub.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscriber: subscribe %s: %v", topic, tok.Error())
	}
	return nil
}

// onMessage accounts a scan event to the code it carries.
func (p *pipeline) onMessage(_ mqtt.Client, m mqtt.Message) {
	now := time.Now().UnixNano()
	id, k, ok := parseBenchCode(m.Payload())
	l := p.cur.Load()
	if !ok || l == nil || id != l.id || k >= l.n {
		p.strays.Add(1)
		return
	}
	if !l.subAt[k].CompareAndSwap(0, now) {
		l.dups.Add(1)
		return
	}
	l.arrived.Add(1)
	l.lastSub.Store(now)
}

// readFeedback reads scanner j's feedback bytes until its pty closes: the
// m-th byte answers the scanner's m-th code of the load in progress.
func (p *pipeline) readFeedback(j int, line *serialsim.Pty) {
	var buf [256]byte
	for {
		n, err := line.Master().Read(buf[:])
		now := time.Now().UnixNano()
		for _, b := range buf[:n] {
			l := p.cur.Load()
			if l == nil {
				continue
			}
			m := int(l.acks[j].Add(1) - 1)
			k := m*len(p.lines) + j
			if k < l.n {
				l.ackAt[k].Store(now)
				l.lastAck.Store(now)
			}
			if b != 0x06 {
				l.bad.Add(1)
			}
		}
		if err != nil {
			return
		}
	}
}

// benchLoad is one phase's codes: when each was sent, reached the
// subscriber and was answered.
type benchLoad struct {
	id    int // in the codes, so that a phase's stragglers are not another's
	n     int
	sent  []atomic.Int64 // unix ns
	subAt []atomic.Int64
	ackAt []atomic.Int64
	acks  []atomic.Int64 // feedback bytes per scanner

	arrived, dups, bad          atomic.Int64
	firstSent, lastSub, lastAck atomic.Int64
}

func newBenchLoad(id, n, lanes int) *benchLoad {
	return &benchLoad{id: id, n: n, sent: make([]atomic.Int64, n), subAt: make([]atomic.Int64, n),
		ackAt: make([]atomic.Int64, n), acks: make([]atomic.Int64, lanes)}
}

func (l *benchLoad) feedbacks() int64 {
	var n int64
	for i := range l.acks {
		n += l.acks[i].Load()
	}
	return n
}

func (l *benchLoad) complete() bool {
	return l.arrived.Load() >= int64(l.n) && l.feedbacks() >= int64(l.n)
}

// latencies are each code's scan→subscriber and scan→feedback times.
func (l *benchLoad) latencies() (sub, ack []time.Duration) {
	for k := range l.n {
		s := l.sent[k].Load()
		if t := l.subAt[k].Load(); t != 0 {
			sub = append(sub, time.Duration(t-s))
		}
		if t := l.ackAt[k].Load(); t != 0 {
			ack = append(ack, time.Duration(t-s))
		}
	}
	return sub, ack
}

// benchCode is code k of load id: unique in a run, printable, and found
// again in the scan event's "raw".
func benchCode(id, k int) string { return fmt.Sprintf("BENCH%d-%09d", id, k) }

var rawField = []byte(`"raw":"BENCH`)

// parseBenchCode finds the load and index of the code in a scan event.
func parseBenchCode(payload []byte) (id, k int, ok bool) {
	i := bytes.Index(payload, rawField)
	if i < 0 {
		return 0, 0, false
	}
	rest := payload[i+len(rawField):]
	dash := bytes.IndexByte(rest, '-')
	end := bytes.IndexByte(rest, '"')
	if dash < 1 || end < dash+2 {
		return 0, 0, false
	}
	id, ok1 := parseDigits(rest[:dash])
	k, ok2 := parseDigits(rest[dash+1 : end])
	return id, k, ok1 && ok2
}

// parseDigits reads a decimal number of up to 9 digits: what benchCode
// writes, and no sign, so never a negative index.
func parseDigits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// startDaemon writes the daemon's config and starts it, under strace when
// syncs are to be slowed, and waits until it is ready and connected.
func (p *pipeline) startDaemon() error {
	o := p.o
	httpAddr, err := freeLoopback()
	if err != nil {
		return err
	}
	p.httpURL = "http://" + httpAddr
	var scanners strings.Builder
	for j, l := range p.lines {
		fmt.Fprintf(&scanners, "\n      - {id: s%d, port: %q, terminator: \"\\r\\n\", feedback: {good: \"\\x06\", bad: \"\\x15\"}}", j+1, l.Path())
	}
	cfgPath := filepath.Join(o.dir, "scangw.yaml")
	cfg := fmt.Sprintf(`gateway: {id: %s, site: %s}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: %s
    mode: receive
    scanners:%s
`, benchGateway, benchSite, filepath.Join(o.dir, "buffer"), p.broker.url(), httpAddr, benchStation, scanners.String())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	argv := []string{o.daemon, "run", "--config", cfgPath}
	if o.syncDelay > 0 {
		us := strconv.FormatInt(o.syncDelay.Microseconds(), 10)
		// seccomp-bpf: strace stops the daemon only at the syncs, so the
		// rest runs at full speed.
		argv = append([]string{"strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null",
			"-e", "trace=fsync,fdatasync,msync", "-e", "inject=fsync,fdatasync,msync:delay_exit=" + us}, argv...)
		p.res["sync_delay_us"] = o.syncDelay.Microseconds()
	}
	p.logPath = filepath.Join(o.dir, "daemon.log")
	logf, err := os.Create(p.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	if o.cpuprofile != "" {
		os.Remove(o.cpuprofile)
		os.Remove(o.cpuprofile + armedSuffix)
		cmd.Env = append(cmd.Env, cpuProfileEnv+"="+o.cpuprofile)
	}
	// Its own process group: stopping the bench stops the daemon too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.child = cmd
	p.exited = make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }() // reaped here; stopDaemon waits on exited
	p.pid = cmd.Process.Pid
	if o.syncDelay > 0 {
		if p.pid, err = awaitChild(cmd.Process.Pid, p.exited, 10*time.Second); err != nil {
			return fmt.Errorf("strace did not start the daemon: %w\n%s", err, p.daemonLog())
		}
	}
	if err := p.awaitReady(30 * time.Second); err != nil {
		return err
	}
	if o.cpuprofile != "" {
		if _, err := os.Stat(o.cpuprofile + armedSuffix); err != nil {
			return fmt.Errorf("--cpuprofile: %s has no profile hook; build it with -tags bench (make bench-tool)", o.daemon)
		}
	}
	return nil
}

// awaitReady polls /readyz until the stations run and MQTT is connected.
func (p *pipeline) awaitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := http.Client{Timeout: time.Second}
	for {
		if err := p.alive(); err != nil {
			return err
		}
		resp, err := client.Get(p.httpURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("mqtt: connected")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not ready and connected after %v\n%s", limit, p.daemonLog())
		}
		time.Sleep(10 * time.Millisecond) // polling the readiness endpoint
	}
}

func (p *pipeline) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the daemon exited: %v\n%s", p.child.ProcessState, p.daemonLog())
	default:
		return nil
	}
}

// stopDaemon stops the daemon with SIGTERM (SIGKILL to its group if it
// takes longer than 15 s).
func (p *pipeline) stopDaemon() {
	syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		syscall.Kill(-p.child.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// daemonLog is the end of the daemon's output, for errors.
func (p *pipeline) daemonLog() string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return "daemon log:\n" + string(data)
}

// awaitProfile waits for the daemon's hook to write the profile.
func (p *pipeline) awaitProfile() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(p.o.cpuprofile); err == nil && fi.Size() > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon wrote no CPU profile to %s\n%s", p.o.cpuprofile, p.daemonLog())
		}
		time.Sleep(10 * time.Millisecond) // polling for the file
	}
}

// scrape reads the daemon's /metrics, summed by metric name.
func (p *pipeline) scrape() (map[string]float64, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(p.httpURL + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape the daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape the daemon: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus text exposition: each sample's value,
// summed over its labels.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
			rest = line[i:]
			if rest[0] == '{' {
				j := strings.LastIndexByte(rest, '}')
				if j < 0 {
					continue
				}
				rest = rest[j+1:]
			}
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		m[name] += v
	}
	return m, sc.Err()
}

// awaitChild returns the pid of parent's first child.
func awaitChild(parent int, exited <-chan struct{}, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
		if f := strings.Fields(string(data)); len(f) > 0 {
			return strconv.Atoi(f[0])
		}
		select {
		case <-exited:
			return 0, errors.New("exited")
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no child after %v", limit)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc
	}
}

// procCPU is a process's user and system CPU time, all threads, in clock
// ticks (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (user, sys int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command name, field 2, may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	user, _ = strconv.ParseInt(f[11], 10, 64)
	sys, _ = strconv.ParseInt(f[12], 10, 64)
	return user, sys
}

func ticksUS(t int64) float64 { return float64(t) * 1e6 / clockTicks }

// vmRSS is a process's resident memory in bytes.
func vmRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// benchBroker is the Mosquitto the bench runs for the daemon. The tests'
// uplink/mosquittotest takes a testing.TB; this is the same config
// without it: loopback, anonymous, set_tcp_nodelay (without it a PUBACK
// waits for the delayed ACK).
type benchBroker struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
}

var mosquittoRunning = regexp.MustCompile(`(?m)mosquitto version \S+ running\s*$`)

func startBenchBroker(ctx context.Context, dir string) (*benchBroker, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			return nil, errors.New("mosquitto not found: install it (apt-get install mosquitto)")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var last error
	// Mosquitto cannot bind port 0: a port picked free may be taken before
	// it binds, so try another.
	for range 5 {
		addr, err := freeLoopback()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		logPath := filepath.Join(dir, "mosquitto.log")
		os.Remove(logPath)
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 1000000\nlog_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n", port, logPath)
		if os.Geteuid() == 0 {
			conf += "user root\n" // else it drops to mosquitto, who cannot open the log here
		}
		confPath := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		b := &benchBroker{cmd: exec.Command(bin, "-c", confPath), addr: addr, exited: make(chan struct{})}
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := b.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start mosquitto: %w", err)
		}
		go func() { b.cmd.Wait(); close(b.exited) }() // reaped here; stop waits on exited
		deadline := time.Now().Add(10 * time.Second)
		for last = nil; last == nil; {
			log, _ := os.ReadFile(logPath)
			if mosquittoRunning.Match(log) {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					return b, nil
				}
			}
			select {
			case <-b.exited:
				last = fmt.Errorf("mosquitto exited: %s", log)
			case <-ctx.Done():
				b.stop()
				return nil, ctx.Err()
			case <-time.After(5 * time.Millisecond): // polling its log
			}
			if last == nil && time.Now().After(deadline) {
				b.stop()
				return nil, fmt.Errorf("mosquitto not running on %s after 10s: %s", addr, log)
			}
		}
		if !strings.Contains(last.Error(), "Address already in use") {
			break
		}
	}
	return nil, last
}

func (b *benchBroker) url() string { return "tcp://" + b.addr }

func (b *benchBroker) pid() int { return b.cmd.Process.Pid }

func (b *benchBroker) stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
}
