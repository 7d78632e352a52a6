package assign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/device/zpl/zpltest"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
)

const (
	gtin    = "09506000134352"
	station = "bench-1"
	source  = "scangw://site1/gw1/bench-1"
)

// The real buffer and printer are what the assigner is built for.
var (
	_ assign.Store   = (*buffer.Buffer)(nil)
	_ assign.Printer = (*zpl.Printer)(nil)
)

// rig is an assigner on a real buffer in a directory that outlives it,
// so a test can close and reopen both.
type rig struct {
	t    *testing.T
	dir  string
	buf  *buffer.Buffer
	reg  *prometheus.Registry
	rec  *recorder
	logs *syncBuffer
	a    *assign.Assigner
	stop func() // ends Run, then closes the buffer
}

// newRig opens the buffer in dir and an assigner on it with the unit
// scheme ({gateway}-{seq:6}, from 1) and whatever edit sets.
func newRig(t *testing.T, dir string, edit func(*assign.Options)) *rig {
	t.Helper()
	buf, err := buffer.Open(buffer.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	r := &rig{t: t, dir: dir, buf: buf, reg: prometheus.NewRegistry(), rec: newRecorder(), logs: &syncBuffer{}}
	r.stop = sync.OnceFunc(func() {
		if err := buf.Close(); err != nil {
			t.Errorf("close buffer: %v", err)
		}
	})
	t.Cleanup(func() { r.stop() })
	o := assign.Options{
		Site: "site1", Gateway: "gw1",
		Schemes:    []assign.Scheme{{Name: "unit", Template: mustTemplate(t, "{gateway}-{seq:6}"), Start: 1}},
		Retry:      20 * time.Millisecond,
		Store:      buf,
		Log:        slog.New(slog.NewTextHandler(r.logs, nil)),
		Registerer: r.reg,
		OnJob:      r.rec.add,
	}
	if edit != nil {
		edit(&o)
	}
	r.a, err = assign.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// run runs the outbox until the rig stops.
func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.a.Run(ctx) }()
	closeBuf := r.stop
	r.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Run: %v", err)
		}
		closeBuf()
	})
}

func mustTemplate(t *testing.T, s string) *serials.Template {
	t.Helper()
	tm, err := serials.Parse(s)
	if err != nil {
		t.Fatalf("template %s: %v", s, err)
	}
	return tm
}

func request(printer string) assign.Request {
	return assign.Request{
		Scheme: "unit", Station: station, Printer: printer, GTIN: gtin, Product: "Widget",
		Operator: "op-7", Trigger: wire.TriggerRead, Source: source, ClockSynced: true,
		Time: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC),
	}
}

// commit stores a Prepared as the station would: one Write, then Done.
func (r *rig) commit(p *assign.Prepared) {
	r.t.Helper()
	_, err := r.buf.SubmitWrite(context.Background(), buffer.Write{Records: p.Records, State: p.State})()
	p.Done(err == nil)
	if err != nil {
		r.t.Fatalf("commit %s: %v", p.Serial, err)
	}
}

// assign prepares and commits one serial.
func (r *rig) assign(req assign.Request) *assign.Prepared {
	r.t.Helper()
	p, err := r.a.Prepare(req)
	if err != nil {
		r.t.Fatalf("Prepare: %v", err)
	}
	r.commit(p)
	return p
}

func (r *rig) counter(scheme string) serials.Counter {
	r.t.Helper()
	b, err := r.buf.LoadState("serials/" + scheme)
	if err != nil {
		r.t.Fatalf("load counter: %v", err)
	}
	var c serials.Counter
	if err := json.Unmarshal(b, &c); err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) keys(prefix string) []string {
	r.t.Helper()
	vs, err := r.buf.ListState(prefix)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Key)
	}
	return out
}

// event is an assigned event as stored.
type event struct {
	ID     string            `json:"id"`
	Source string            `json:"source"`
	Type   string            `json:"type"`
	Data   wire.AssignedData `json:"data"`
}

// events returns the buffer's events, with their streams.
func (r *rig) events() ([]event, []string) {
	r.t.Helper()
	entries, err := r.buf.Peek(0, 10000)
	if err != nil {
		r.t.Fatal(err)
	}
	var evs []event
	var streams []string
	for _, e := range entries {
		var ev event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			r.t.Fatalf("event %s: %v", e.Payload, err)
		}
		evs, streams = append(evs, ev), append(streams, e.Stream)
	}
	return evs, streams
}

// metrics compares the exposition of the named metrics with want.
func (r *rig) metrics(want string, names ...string) {
	r.t.Helper()
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want), names...); err != nil {
		r.t.Error(err)
	}
}

// recorder keeps every OnJob call.
type recorder struct {
	mu      sync.Mutex
	all     []result
	changed chan struct{}
}

type result struct {
	printer string
	n       uint64
	result  string
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(printer string, n uint64, res string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, result{printer, n, res})
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) snapshot() []result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// count is how many calls match.
func (r *recorder) count(match func(result) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.all {
		if match(c) {
			n++
		}
	}
	return n
}

// wait waits until n calls match.
func (r *recorder) wait(t *testing.T, n int, what string, match func(result) bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := 0
		for _, c := range r.all {
			if match(c) {
				got++
			}
		}
		ch := r.changed
		all := append([]result(nil), r.all...)
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waiting for %d× %s: %d so far; all results: %v", n, what, got, all)
		}
	}
}

func is(res string) func(result) bool { return func(c result) bool { return c.result == res } }

func job(n uint64, res string) func(result) bool {
	return func(c result) bool { return c.n == n && c.result == res }
}

// fakePrinter starts the fake network printer and a zpl.Printer for it.
func fakePrinter(t *testing.T) (*zpltest.Printer, *zpl.Printer) {
	t.Helper()
	fp := zpltest.Start(t)
	p, err := zpl.New(zpl.Config{Addr: fp.Addr(), DialTimeout: 2 * time.Second, ReplyTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fp, p
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
