package station

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
)

// handle takes one read through the whole pipeline at once, as it goes
// for a scanner that waits for each answer.
func (s *Station) handle(ctx context.Context, sc Scanner, r device.Read) {
	l := s.newLoop(sc)
	s.give(l, s.take(ctx, l, r))
}

// gateStore holds every commit until the test opens the gate: what the
// station does before its commits return shows.
type gateStore struct {
	*buffer.Buffer
	gate      chan struct{}
	submitted atomic.Int32
}

func (g *gateStore) Submit(ctx context.Context, stream string, build func(uint64) ([]byte, error)) func() (uint64, error) {
	wait := g.Buffer.Submit(ctx, stream, build)
	g.submitted.Add(1)
	return func() (uint64, error) {
		<-g.gate
		return wait()
	}
}

// burst is a scanner that delivers its reads as one read() of a
// streaming reader carries them: back to back, all but the last marked
// More (device.Chunk).
type burst struct {
	feed
	reads []string
}

func (b *burst) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	var chunk []device.Read
	for _, d := range b.reads {
		chunk = append(chunk, device.Read{Scanner: b.id, Data: []byte(d), Time: time.Now()})
	}
	device.Chunk(chunk, func(r device.Read) { handle(ctx, r) })
	<-ctx.Done()
	return nil
}

// TestReadsShareCommits: a scanner's reads are submitted while earlier
// ones still wait for their commit (so they can share it), and each is
// answered, in read order, only after its own commit returned.
func TestReadsShareCommits(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	store := &gateStore{Buffer: buf, gate: make(chan struct{})}
	sc := &burst{feed: *newFeed("r1")}
	for i := range 10 {
		sc.reads = append(sc.reads, fmt.Sprintf("CODE-%02d", i))
	}
	sc.reads[4] = "X" // too short: rejected, still stored and answered in turn
	st := New(Config{ID: "t1", Mode: "receive"}, Deps{Scanners: []Scanner{sc}, Store: store,
		Validator: LengthRule{Min: 2}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- st.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}()

	for store.submitted.Load() < 10 {
		time.Sleep(time.Millisecond) // polling the count under test
	}
	if len(sc.out) != 0 {
		t.Fatal("a read was answered before its commit returned")
	}
	if st.Busy().IsZero() {
		t.Fatal("reads waiting for their commit are not busy")
	}
	close(store.gate)
	for i := range 10 {
		want := device.Good
		if i == 4 {
			want = device.Bad
		}
		if sig := <-sc.out; sig != want {
			t.Fatalf("answer %d: %v, want %v", i, sig, want)
		}
	}
	es, err := buf.Peek(0, 20)
	if err != nil || len(es) != 10 {
		t.Fatalf("%d stored, %v", len(es), err)
	}
	for i, e := range es {
		var ev struct{ Data struct{ Raw string } }
		json.Unmarshal(e.Payload, &ev)
		if ev.Data.Raw != sc.reads[i] || e.Seq != uint64(i+1) {
			t.Fatalf("stored #%d: seq %d %q, want seq %d %q", i, e.Seq, ev.Data.Raw, i+1, sc.reads[i])
		}
	}
	for !st.Busy().IsZero() {
		time.Sleep(time.Millisecond) // polling the state under test
	}
}

func TestCachedClock(t *testing.T) {
	var asked int
	synced := false
	c := cachedClock(func() bool { asked++; return synced }, time.Hour)
	if c() || c() || asked != 1 {
		t.Fatalf("asked %d times for two answers within the interval", asked)
	}
	synced = true
	if c() {
		t.Fatal("answer changed within the interval")
	}
	c = cachedClock(func() bool { asked++; return synced }, 0)
	if !c() || !c() || asked != 3 {
		t.Fatalf("with no interval: asked %d", asked)
	}
}
