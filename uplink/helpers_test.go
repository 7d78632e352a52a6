package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// Topics follow the wire contract: <prefix>/<site>/<gateway>/...
const (
	scanTopic    = "t/site1/gw1/scans/s1"
	scanFilter   = "t/site1/gw1/scans/#"
	statusTopic  = "t/site1/gw1/status"
	statusSource = "scangw://site1/gw1"

	// deliveryTimeout bounds waits for the whole backlog to arrive. It only
	// matters when a test fails; under -race on two cores a few thousand
	// scans take a few seconds.
	deliveryTimeout = 45 * time.Second
	// pollEvery is the tick of waitUntil.
	pollEvery = 5 * time.Millisecond
)

// testQueue is what the tests run the uplink on and append to: a Queue
// that is also its Backlog. memQueue is the in-memory fake; bufferQueue is
// the real buffer, for the tests whose point is durability.
type testQueue interface {
	Queue
	Backlog
	Append(ctx context.Context, stream string, build func(seq uint64) ([]byte, error)) (uint64, error)
}

// bufferQueue is the real Badger buffer as the uplink's queue. Its
// Backlog, Resender and StateStore are the buffer's own.
type bufferQueue struct{ *buffer.Buffer }

// Peek converts the buffer's entries into the uplink's messages.
func (q bufferQueue) Peek(from uint64, max int) ([]Message, error) {
	es, err := q.Buffer.Peek(from, max)
	out := make([]Message, 0, len(es))
	for _, e := range es {
		out = append(out, Message{Pos: e.Pos, Time: e.Time, Stream: e.Stream, Payload: e.Payload})
	}
	return out, err
}

// openBuffer opens a real Badger buffer in a fresh temp dir; it is closed
// when the test ends (after the uplink, whose cleanup is registered later).
func openBuffer(t testing.TB) bufferQueue {
	t.Helper()
	return openBufferWith(t, buffer.Options{})
}

// openBufferWith is openBuffer with options (Dir is set here).
func openBufferWith(t testing.TB, opts buffer.Options) bufferQueue {
	t.Helper()
	opts.Dir = t.TempDir()
	b, err := buffer.Open(opts)
	if err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close buffer: %v", err)
		}
	})
	return bufferQueue{b}
}

// scanStream is the stream the test scans are appended on; the uplink
// publishes it on scanTopic.
var scanStream = wire.ScanStream("s1")

// scanPayload builds a compact JSON payload carrying seq, padded with 'x' to
// size bytes where size allows it.
func scanPayload(size int) func(seq uint64) ([]byte, error) {
	return func(seq uint64) ([]byte, error) {
		p := fmt.Appendf(nil, `{"seq":%d,"pad":"`, seq)
		for len(p)+2 < size {
			p = append(p, 'x')
		}
		return append(p, '"', '}'), nil
	}
}

// seqOf reads the seq from a scanPayload payload.
func seqOf(payload []byte) (uint64, error) {
	var v struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return 0, err
	}
	if v.Seq == nil {
		return 0, fmt.Errorf("no seq in %q", payload)
	}
	return *v.Seq, nil
}

// appendScans appends n scans with up to parallel appends in flight, so
// that group commit covers many of them with one sync. The queue assigns
// the sequence numbers; which goroutine appended which does not matter.
func appendScans(ctx context.Context, q testQueue, n, parallel, size int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for range n {
		g.Go(func() error {
			if _, err := q.Append(ctx, scanStream, scanPayload(size)); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

func mustAppend(t testing.TB, q testQueue, n int) {
	t.Helper()
	if err := appendScans(context.Background(), q, n, 32, 0); err != nil {
		t.Fatal(err)
	}
}

// testConfig is an uplink config for a broker at url with short timers, so
// reconnects take milliseconds. The birth carries version "test", config
// hash "cafe" and the backlog's epoch.
func testConfig(url string, backlog Backlog) Config {
	return Config{
		Broker:         url,
		ClientID:       "gw1",
		Inflight:       20,
		KeepAlive:      30 * time.Second,
		ConnectTimeout: 2 * time.Second,
		WriteTimeout:   2 * time.Second,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		TopicPrefix:    "t",
		Site:           "site1",
		Gateway:        "gw1",
		Version:        "test",
		ConfigHash:     "cafe",
		Backlog:        backlog,
	}
}

// checkContract holds a message the gateway published to the wire
// contract (schema.CheckMessage) under the topics of gateway gw1 at site1
// with the topic's own prefix (tests use several).
func checkContract(topic string, payload []byte) error {
	prefix, _, ok := strings.Cut(topic, "/site1/gw1/")
	if !ok {
		return fmt.Errorf("topic %q is not under <prefix>/site1/gw1/", topic)
	}
	return schema.CheckMessage(wire.TopicsFor(prefix, "site1", "gw1"), topic, payload)
}

// testLogger writes to the test's output, which is shown with -v or when
// the test fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// logBuf collects log output for assertions; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureLogger logs everything, debug included, to the test's output and
// to the returned buffer.
func captureLogger(t testing.TB) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), lb), &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// runUplink runs u.Run in the background. stop cancels it and checks that
// Run returns nil soon after; it also runs when the test ends.
func runUplink(t testing.TB, cfg Config, q Queue) (u *Uplink, reg *prometheus.Registry, stop func()) {
	t.Helper()
	return runUplinkLog(t, cfg, q, testLogger(t))
}

// runUplinkLog is runUplink with the given logger.
func runUplinkLog(t testing.TB, cfg Config, q Queue, log *slog.Logger) (u *Uplink, reg *prometheus.Registry, stop func()) {
	t.Helper()
	reg = prometheus.NewRegistry()
	u = New(cfg, q, log, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			timer := time.NewTimer(15 * time.Second)
			defer timer.Stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-timer.C:
				t.Errorf("Run did not return within 15s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return u, reg, stop
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-timer.C:
			if cond() {
				return time.Since(start)
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
	return time.Since(start)
}

// metricValue returns the value of the counter or gauge name as reg
// exposes it, summed over its series whose labels include labels (pairs
// of name and value): metricValue(t, reg, "x_total") is the sum over all
// of x_total's series.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			default:
				t.Fatalf("metric %s is neither counter nor gauge", name)
			}
		}
		return sum
	}
	if len(labels) > 0 {
		return 0 // a vector without that series yet
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// drained waits until the queue holds nothing: Depth 0 and Peek empty.
func drained(t testing.TB, buf testQueue, timeout time.Duration) {
	t.Helper()
	defer func() {
		if t.Failed() {
			es, err := buf.Peek(0, 5)
			t.Logf("queue: Depth() = %d, Peek(0, 5) = %d entries (err %v)", buf.Depth(), len(es), err)
			for _, e := range es {
				t.Logf("\tposition %d: %s", e.Pos, e.Payload)
			}
		}
	}()
	waitUntil(t, timeout, "the queue to drain", func() bool { return buf.Depth() == 0 })
	es, err := buf.Peek(0, 10)
	if err != nil {
		t.Fatalf("peek: %v", err)
	}
	if len(es) != 0 {
		t.Fatalf("Depth() = 0 but Peek returns %d entries, first at queue position %d", len(es), es[0].Pos)
	}
}

// arrivals folds a subscriber's messages into the order of first arrival.
// It is fed from the test goroutine only (through Subscriber.WaitFor).
type arrivals struct {
	folded int
	first  []uint64
	seen   map[uint64]bool
	dups   int
	bad    []string
}

func (a *arrivals) fold(msgs []mosquittotest.Message) {
	if a.seen == nil {
		a.seen = map[uint64]bool{}
	}
	for _, m := range msgs[a.folded:] {
		seq, err := seqOf(m.Payload)
		switch {
		case m.Topic != scanTopic:
			a.bad = append(a.bad, fmt.Sprintf("unexpected topic %q", m.Topic))
		case err != nil:
			a.bad = append(a.bad, fmt.Sprintf("payload %q: %v", m.Payload, err))
		case a.seen[seq]:
			a.dups++
		default:
			a.seen[seq] = true
			a.first = append(a.first, seq)
		}
	}
	a.folded = len(msgs)
}

// waitAll waits until n distinct scans arrived at sub.
func (a *arrivals) waitAll(t testing.TB, sub *mosquittotest.Subscriber, n int, timeout time.Duration) {
	t.Helper()
	// WaitFor ends the test with runtime.Goexit on timeout, which still
	// runs this: say which scans are missing.
	defer func() {
		if len(a.seen) >= n {
			return
		}
		var missing []uint64
		for seq := uint64(1); seq <= uint64(n); seq++ {
			if !a.seen[seq] {
				missing = append(missing, seq)
			}
		}
		t.Errorf("%d of %d scans missing, first: %v", len(missing), n, missing[:min(len(missing), 10)])
	}()
	sub.WaitFor(timeout, fmt.Sprintf("%d distinct scans", n), func(m []mosquittotest.Message) bool {
		a.fold(m)
		return len(a.seen) >= n
	})
}

// check asserts that the first arrivals are exactly seq 1..n: every scan
// arrived, none arrived before one with a lower seq, and there are no gaps.
func (a *arrivals) check(t testing.TB, n int) {
	t.Helper()
	if len(a.bad) > 0 {
		t.Errorf("%d malformed messages, first: %s", len(a.bad), a.bad[0])
	}
	for i, seq := range a.first {
		if want := uint64(i + 1); seq != want {
			lo, hi := max(i-3, 0), min(i+4, len(a.first))
			t.Errorf("first arrival #%d is seq %d, want %d (first arrivals %d..%d: %v)", i, seq, want, lo, hi-1, a.first[lo:hi])
			return
		}
	}
	if len(a.first) != n {
		t.Errorf("%d distinct scans arrived, want %d", len(a.first), n)
	}
}

// checkedQueue is a test queue with every Ack checked. Acks must come
// as a growing prefix of the queue: the uplink publishes from the oldest
// unacknowledged message and collects in order, so acking position p while
// a lower one was never acked would mean a message was skipped. check, when
// set, vets the seq (from the payload) of each acked message; the proxy
// test uses it to prove a PUBACK for that scan reached the gateway. Peek is
// wrapped to learn which seq each queue position holds.
type checkedQueue struct {
	testQueue
	check func(seq uint64) error

	mu      sync.Mutex
	seqAt   map[uint64]uint64 // queue position → seq, from Peek
	prefix  uint64            // positions 1..prefix have all been acked
	dupAcks int
	errs    []string
}

func (q *checkedQueue) Peek(from uint64, max int) ([]Message, error) {
	es, err := q.testQueue.Peek(from, max)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seqAt == nil {
		q.seqAt = map[uint64]uint64{}
	}
	for _, e := range es {
		seq, err := seqOf(e.Payload)
		if err != nil {
			q.errs = append(q.errs, fmt.Sprintf("Peek: position %d: %v", e.Pos, err))
			continue
		}
		q.seqAt[e.Pos] = seq
	}
	return es, err
}

func (q *checkedQueue) Ack(pos uint64) {
	q.mu.Lock()
	switch {
	case pos <= q.prefix:
		q.dupAcks++
	case pos == q.prefix+1:
		q.prefix++
	default:
		q.errs = append(q.errs, fmt.Sprintf("Ack(%d) before position %d was acked", pos, q.prefix+1))
	}
	if seq, ok := q.seqAt[pos]; !ok {
		q.errs = append(q.errs, fmt.Sprintf("Ack(%d): Peek never returned that position", pos))
	} else if q.check != nil {
		if err := q.check(seq); err != nil {
			q.errs = append(q.errs, err.Error())
		}
	}
	q.mu.Unlock()
	q.testQueue.Ack(pos)
}

// verify reports bad acks and checks that positions 1..n were acked (a
// fresh queue numbers its positions from 1).
func (q *checkedQueue) verify(t testing.TB, n int) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.errs) > 0 {
		t.Errorf("%d bad acks:\n\t%s", len(q.errs), strings.Join(q.errs[:min(len(q.errs), 10)], "\n\t"))
	}
	if q.prefix != uint64(n) {
		t.Errorf("acked positions 1..%d, want 1..%d", q.prefix, n)
	}
}
