package uplink

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// BenchmarkDrain drains a 100,000-scan backlog of 300-byte payloads to a
// local Mosquitto and reports scans/s (PUBLISH to PUBACK and delete, the
// whole gateway path) and the gateway's and the broker's CPU time per scan.
// In the same run, against the same broker and with the same window, it
// measures three references:
//
//   - mosquitto_pub -q 1 -M <Inflight>: libmosquitto in C, one process;
//   - paho alone: a paho client publishing the same messages from memory
//     (no buffer, no uplink), on a plain socket;
//   - paho alone through batchConn, the socket the uplink uses.
//
// The gateway cannot drain faster than paho can publish; the last two say
// where that ceiling is on this machine and what batchConn adds to it.
func BenchmarkDrain(b *testing.B) {
	const backlog, size, window = 100_000, 300, 20
	br := mosquittotest.Start(b, mosquittotest.Options{})
	var scans int
	var took, brokerCPU, selfCPU time.Duration
	for i := range b.N {
		b.StopTimer()
		raw, err := buffer.Open(buffer.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		buf := bufferQueue{raw}
		if err := appendScans(context.Background(), buf, backlog, 256, size); err != nil {
			b.Fatal(err)
		}
		cfg := testConfig(br.URL(), buf)
		cfg.ClientID = fmt.Sprintf("gw-drain-%d", i)
		cfg.Inflight = window
		u := New(cfg, buf, testLogger(b), prometheus.NewRegistry())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)

		b.StartTimer()
		broker0, self0 := br.CPUTime(), processCPU(b)
		start := time.Now()
		go func() { done <- u.Run(ctx) }()
		waitUntil(b, 10*time.Minute, "the backlog to be acknowledged", func() bool {
			return testutil.ToFloat64(u.m.published) >= backlog
		})
		elapsed := time.Since(start)
		brokerCPU += br.CPUTime() - broker0
		selfCPU += processCPU(b) - self0
		b.StopTimer()

		drained(b, buf, time.Minute)
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
		if err := buf.Close(); err != nil {
			b.Errorf("close buffer: %v", err)
		}
		scans += backlog
		took += elapsed
	}
	rate := float64(scans) / took.Seconds()
	b.ReportMetric(rate, "scans/s")
	b.ReportMetric(perMsg(selfCPU, scans), "gateway-cpu-µs/scan")
	b.ReportMetric(perMsg(brokerCPU, scans), "broker-cpu-µs/scan")

	// mosquitto_pub in line mode stops early past 65,535 lines at QoS 1
	// (TESTING.md), so the same count goes in runs of 50,000.
	const perRun = 50_000
	lines := bytes.Repeat(append(bytes.Repeat([]byte{'x'}, size), '\n'), perRun)
	var ref run
	for sent := 0; sent < backlog; sent += perRun {
		ref.add(mosquittoPub(b, br, lines, perRun, window))
	}
	b.ReportMetric(ref.rate(), "mosquitto_pub-msgs/s")
	b.ReportMetric(perMsg(ref.clientCPU, ref.msgs), "mosquitto_pub-cpu-µs/msg")
	b.ReportMetric(rate/ref.rate(), "x-mosquitto_pub")

	plain := pahoAlone(b, br, backlog, size, window, false)
	b.ReportMetric(plain.rate(), "paho-msgs/s")
	b.ReportMetric(perMsg(plain.clientCPU, plain.msgs), "paho-cpu-µs/msg")
	batched := pahoAlone(b, br, backlog, size, window, true)
	b.ReportMetric(batched.rate(), "paho+batchConn-msgs/s")
	b.ReportMetric(perMsg(batched.clientCPU, batched.msgs), "paho+batchConn-cpu-µs/msg")
	b.ReportMetric(rate/batched.rate(), "x-paho+batchConn")
}

// run is one reference publisher's figures.
type run struct {
	msgs      int
	took      time.Duration
	clientCPU time.Duration
}

func (r *run) add(o run) {
	r.msgs += o.msgs
	r.took += o.took
	r.clientCPU += o.clientCPU
}

func (r run) rate() float64 { return float64(r.msgs) / r.took.Seconds() }

func perMsg(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }

// mosquittoPub publishes each line of lines at QoS 1 with mosquitto_pub,
// window in flight, and reports how many PUBACKs it received (its debug
// output lists them), how long it took and its CPU time. It fails the
// benchmark unless all want were acked.
func mosquittoPub(b *testing.B, br *mosquittotest.Broker, lines []byte, want, window int) run {
	b.Helper()
	cmd := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(br.Port()),
		"-q", "1", "-M", strconv.Itoa(window), "-t", "bench/ref", "-i", "ref-pub", "-l", "-d")
	cmd.Stdin = bytes.NewReader(lines)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("mosquitto_pub: %v", err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "received PUBACK") {
			acked++
		}
	}
	err = cmd.Wait()
	took := time.Since(start)
	if err != nil || acked != want {
		b.Fatalf("mosquitto_pub: %v; %d of %d lines acknowledged; stderr: %s", err, acked, want, stderr.String())
	}
	return run{acked, took, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

// pahoAlone publishes n messages of size bytes at QoS 1 from memory with a
// bare paho client, window in flight (a token is waited for before the
// window moves on), on a plain socket or through batchConn. The CPU time
// is this whole process's.
func pahoAlone(b *testing.B, br *mosquittotest.Broker, n, size, window int, batched bool) run {
	b.Helper()
	opts := mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("ref-paho").
		SetAutoReconnect(false).SetProtocolVersion(4).SetStore(noStore{}).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second)
	if batched {
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", uri.Host, 5*time.Second)
			if err != nil {
				return nil, err
			}
			return newBatchConn(c, 5*time.Second), nil
		})
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("paho reference: connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	payload := bytes.Repeat([]byte{'x'}, size)
	inflight := make(chan mqtt.Token, window)
	failed := make(chan error, 1)
	acked := make(chan struct{})
	cpu0 := processCPU(b)
	start := time.Now()
	go func() {
		defer close(acked)
		for range n {
			tok := <-inflight
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				failed <- fmt.Errorf("token: %v", tok.Error())
				return
			}
		}
	}()
	for range n {
		select {
		case inflight <- c.Publish("bench/ref", 1, false, payload):
		case <-acked:
		}
	}
	<-acked
	r := run{n, time.Since(start), processCPU(b) - cpu0}
	select {
	case err := <-failed:
		b.Fatalf("paho reference: %v", err)
	default:
	}
	return r
}

// processCPU is the CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPublishLatency appends at a steady 200 scans/s for 3 s with a
// subscriber attached and reports percentiles of: the append itself (the
// durable commit), append-return to arrival at the subscriber (end to
// end through the broker), and PUBLISH to PUBACK as the uplink's own
// histogram estimates it. It runs against a broker with set_tcp_nodelay
// true, as the README asks brokers to run, and against Mosquitto's default
// (Nagle on), to show what that setting is worth.
func BenchmarkPublishLatency(b *testing.B) {
	b.Run("broker=nodelay", func(b *testing.B) { publishLatency(b, false) })
	b.Run("broker=nagle", func(b *testing.B) { publishLatency(b, true) })
}

func publishLatency(b *testing.B, nagle bool) {
	const (
		rate = 200
		n    = 3 * rate
	)
	br := mosquittotest.Start(b, mosquittotest.Options{Nagle: nagle})
	arrived := newArrivalClock(b, br)
	buf := openBuffer(b)
	u, reg, _ := runUplink(b, testConfig(br.URL(), buf), buf)
	waitUntil(b, 10*time.Second, "connected", u.Connected)

	var appendLat, e2e []time.Duration
	for range b.N {
		appendedAt := make(map[uint64]time.Time, n)
		tick := time.NewTicker(time.Second / rate)
		for range n {
			<-tick.C // paces the load; synchronises nothing
			start := time.Now()
			seq, err := buf.Append(context.Background(), scanStream, scanPayload(300))
			if err != nil {
				b.Fatal(err)
			}
			appendedAt[seq] = time.Now()
			appendLat = append(appendLat, appendedAt[seq].Sub(start))
		}
		tick.Stop()
		for seq, at := range appendedAt {
			got := arrived.wait(b, seq, 30*time.Second)
			e2e = append(e2e, max(got.Sub(at), 0))
		}
	}
	drained(b, buf, 10*time.Second)

	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		for _, q := range []float64{0.5, 0.99} {
			v := d[min(int(q*float64(len(d))), len(d)-1)]
			b.ReportMetric(float64(v.Microseconds())/1000, fmt.Sprintf("%s-p%d-ms", name, int(q*100)))
		}
	}
	report("append", appendLat)
	report("e2e", e2e)
	h := histogram(b, reg, "scangw_mqtt_publish_latency_seconds")
	for _, q := range []float64{0.5, 0.99} {
		b.ReportMetric(histogramQuantile(q, h)*1000, fmt.Sprintf("puback-p%d-ms", int(q*100)))
	}
}

// arrivalClock is a QoS 1 subscriber that notes when each scan arrived.
type arrivalClock struct {
	mu      sync.Mutex
	at      map[uint64]time.Time
	changed chan struct{}
}

func newArrivalClock(b *testing.B, br *mosquittotest.Broker) *arrivalClock {
	a := &arrivalClock{at: map[uint64]time.Time{}, changed: make(chan struct{})}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("sub-latency").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect subscriber: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(250) })
	tok := c.Subscribe(scanFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		seq, err := seqOf(m.Payload())
		if err != nil {
			return // reported as a missing arrival
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, dup := a.at[seq]; !dup {
			a.at[seq] = now
		}
		close(a.changed)
		a.changed = make(chan struct{})
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	return a
}

// wait returns when seq arrived.
func (a *arrivalClock) wait(b *testing.B, seq uint64, timeout time.Duration) time.Time {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		a.mu.Lock()
		at, ok := a.at[seq]
		changed := a.changed
		a.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-changed:
		case <-timer.C:
			b.Fatalf("scan %d did not arrive within %v", seq, timeout)
		}
	}
}

type bucket struct {
	upper float64
	count uint64 // cumulative
}

// histogram returns the cumulative buckets of the unlabelled histogram
// name, ending with +Inf.
func histogram(b *testing.B, reg prometheus.Gatherer, name string) []bucket {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		var out []bucket
		for _, bk := range h.GetBucket() {
			out = append(out, bucket{bk.GetUpperBound(), bk.GetCumulativeCount()})
		}
		return append(out, bucket{math.Inf(1), h.GetSampleCount()})
	}
	b.Fatalf("histogram %s not registered", name)
	return nil
}

// histogramQuantile estimates the q-quantile like PromQL's
// histogram_quantile: linear within the bucket that holds it.
func histogramQuantile(q float64, bs []bucket) float64 {
	total := bs[len(bs)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for _, bk := range bs {
		if float64(bk.count) >= rank {
			if math.IsInf(bk.upper, 1) {
				return lower
			}
			return lower + (bk.upper-lower)*(rank-float64(below))/float64(bk.count-below)
		}
		lower, below = bk.upper, bk.count
	}
	return lower
}
