package assign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
)

// DefaultRetry is how long a worker waits before it tries a printer that
// was not ready again, when Options.Retry is 0.
const DefaultRetry = 5 * time.Second

// Store is what the assigner needs from the durable buffer
// (*buffer.Buffer).
type Store interface {
	SubmitWrite(ctx context.Context, w buffer.Write) (wait func() ([]uint64, error))
	// LoadState returns an error wrapping fs.ErrNotExist for a key never
	// saved.
	LoadState(key string) ([]byte, error)
	ListState(prefix string) ([]buffer.StateValue, error)
	Epoch() string
}

// Printer is a label printer (*zpl.Printer).
//
// Send is not cancelled when Run's ctx ends: a job cut off half-sent is
// in doubt, so a stop lets the send in progress finish. It must return
// in bounded time on its own (zpl.Config.WriteTimeout). Its error tells
// a job that never left from one that may have: a failed dial
// (*net.OpError with Op "dial") or device open (*fs.PathError with Op
// "open"), as device/zpl returns them, means no byte was sent.
//
// Status reports the printer's state; an error wrapping
// errors.ErrUnsupported (a USB printer) means it has none, and the
// worker sends without asking.
type Printer interface {
	Send(ctx context.Context, job []byte) error
	Status(ctx context.Context) (zpl.Status, error)
}

// Scheme is one serial scheme: its template and how its counter runs.
type Scheme struct {
	// Name is the scheme's id, in state keys and events.
	Name     string
	Template *serials.Template
	// Start is the first number of a free counter (Granted false).
	Start uint64
	// Granted schemes issue only numbers of the blocks Grant gives.
	Granted bool
	// LowWater: fewer numbers left than this is "low" (metric, status,
	// one warning); 0 never is.
	LowWater uint64
}

// Options configure New.
type Options struct {
	// Site and Gateway fill {site} and {gateway} in serial templates.
	Site, Gateway string
	Schemes       []Scheme
	// Printers by id, as requests name them.
	Printers map[string]Printer
	// Retry is the wait before a printer that was not ready is tried
	// again (DefaultRetry when 0).
	Retry time.Duration
	Store Store
	Log   *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OnJob, when set, is called by the outbox after each attempt at a
	// job with its result: "printed", "in_doubt", or the reason the job
	// was held back ("paper_out", "unreachable", "no_status", "error" for
	// a store failure …). Tests wait on it.
	OnJob func(printer string, n uint64, result string)
}

// Assigner assigns serials and prints their labels. Its methods are safe
// for concurrent use.
type Assigner struct {
	o     Options
	label *label.Template // DefaultTemplate, for requests without one
	plain *label.Template // SerialTemplate: label for a serial without GTIN
	m     *metrics

	// assign is the assign lock, held from Prepare to Done and through
	// Grant: one reservation at a time on the whole gateway.
	assign sync.Mutex

	mu       sync.Mutex // guards what follows and the fields of schemes and printers
	schemes  map[string]*scheme
	names    []string // scheme names in config order
	printers map[string]*printer
	ids      []string // printer ids, sorted
	nextJob  uint64
	doubt    []Job // in key order: printer, then n
}

type scheme struct {
	cfg     Scheme
	counter serials.Counter
	low     bool // below low water (warned once)
}

// State keys; see the package comment.
const (
	nextJobKey  = "print/next"
	printPrefix = "print/"
	doubtPrefix = "print/doubt/"
)

func counterKey(scheme string) string        { return "serials/" + scheme }
func issuedKey(scheme, serial string) string { return "serials/" + scheme + "/issued/" + serial }
func lastKey(station string) string          { return "serials/last/" + station }
func jobKey(printer string, n uint64) string {
	return fmt.Sprintf("%s%s/%020d", printPrefix, printer, n)
}
func doubtKey(printer string, n uint64) string {
	return fmt.Sprintf("%s%s/%020d", doubtPrefix, printer, n)
}

// New loads the schemes' counters and the print outbox from o.Store. A
// job found marked "sending" (the gateway stopped mid-send) is moved to
// the in-doubt list here, in one Write, and not sent again.
func New(o Options) (*Assigner, error) {
	if o.Store == nil {
		return nil, errors.New("assign: no store")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	def, err := label.Parse(label.DefaultTemplate)
	if err != nil {
		return nil, fmt.Errorf("assign: default label: %w", err)
	}
	plain, err := label.Parse(label.SerialTemplate)
	if err != nil {
		return nil, fmt.Errorf("assign: default label without GTIN: %w", err)
	}
	a := &Assigner{o: o, label: def, plain: plain, schemes: map[string]*scheme{}, printers: map[string]*printer{}}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("assign: metrics: %w", err)
	}
	a.m = m
	if err := a.loadSchemes(); err != nil {
		return nil, err
	}
	for id, dev := range o.Printers {
		switch {
		case !wire.ValidID(id):
			return nil, fmt.Errorf("assign: printer %q: not an id (1 to 64 of [A-Za-z0-9._-])", id)
		case id == "next" || id == "doubt":
			return nil, fmt.Errorf("assign: printer %q: the name is taken by the outbox's own keys", id)
		case dev == nil:
			return nil, fmt.Errorf("assign: printer %s: nil", id)
		}
		a.printers[id] = &printer{id: id, dev: dev, wake: make(chan struct{}, 1), reason: "unknown"}
		a.ids = append(a.ids, id)
	}
	slices.Sort(a.ids)
	if err := a.loadOutbox(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Assigner) loadSchemes() error {
	for _, s := range a.o.Schemes {
		switch {
		case !wire.ValidID(s.Name):
			return fmt.Errorf("assign: scheme %q: not an id (1 to 64 of [A-Za-z0-9._-])", s.Name)
		case s.Name == "last":
			return errors.New(`assign: scheme "last": the name is taken by the stations' last serials (serials/last/)`)
		case s.Template == nil:
			return fmt.Errorf("assign: scheme %s: no template", s.Name)
		case a.schemes[s.Name] != nil:
			return fmt.Errorf("assign: scheme %s: given twice", s.Name)
		}
		c := serials.Counter{Next: s.Start}
		if s.Granted {
			c = serials.Counter{Granted: true}
		}
		b, err := a.o.Store.LoadState(counterKey(s.Name))
		switch {
		case err == nil:
			var stored serials.Counter
			if err := json.Unmarshal(b, &stored); err != nil {
				return fmt.Errorf("assign: scheme %s: stored counter %s: %w", s.Name, counterKey(s.Name), err)
			}
			c = stored
			if stored.Granted != s.Granted {
				// The numbers issued stay issued: the counter never
				// goes below them, whichever way it now runs.
				c = serials.Counter{Next: stored.Next, Granted: s.Granted}
				if !s.Granted {
					c.Next = max(stored.Next, s.Start)
				}
				a.o.Log.Warn("serial scheme changed between free and granted; the counter continues from the numbers issued",
					"scheme", s.Name, "granted", s.Granted, "next", c.Next)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("assign: scheme %s: %w", s.Name, err)
		default:
			// No counter, but serials issued (a salvage that lost the
			// counter's key): never below them.
			if top, err := a.highestIssued(s.Name); err != nil {
				return fmt.Errorf("assign: scheme %s: %w", s.Name, err)
			} else if top > 0 {
				c.Next = max(c.Next, top+1)
				a.o.Log.Warn("serial counter missing; it continues after the highest serial issued", "scheme", s.Name, "next", c.Next)
			}
		}
		sc := &scheme{cfg: s, counter: c}
		a.m.issued.WithLabelValues(s.Name) // exported as 0 from the start
		a.schemes[s.Name] = sc
		a.names = append(a.names, s.Name)
		a.mu.Lock()
		a.levels(sc)
		a.mu.Unlock()
	}
	return nil
}

// levels updates a scheme's gauges and warns once when it goes below
// low water. The caller holds a.mu.
func (a *Assigner) levels(sc *scheme) {
	rem := sc.counter.Remaining(sc.cfg.Template.MaxSeq())
	low := rem < sc.cfg.LowWater
	a.m.remaining.WithLabelValues(sc.cfg.Name).Set(float64(rem))
	a.m.low.WithLabelValues(sc.cfg.Name).Set(b2f(low))
	if low && !sc.low {
		a.o.Log.Warn("serial numbers running low", "scheme", sc.cfg.Name, "remaining", rem, "low_water", sc.cfg.LowWater, "granted", sc.cfg.Granted)
	} else if !low && sc.low {
		a.o.Log.Info("serial numbers above low water again", "scheme", sc.cfg.Name, "remaining", rem)
	}
	sc.low = low
}

// Schemes returns the schemes' counters in config order, as /status and
// the heartbeat show them (Low: below the scheme's LowWater).
func (a *Assigner) Schemes() []wire.SerialStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]wire.SerialStatus, 0, len(a.names))
	for _, name := range a.names {
		sc := a.schemes[name]
		out = append(out, wire.SerialStatus{
			Scheme:    name,
			Remaining: sc.counter.Remaining(sc.cfg.Template.MaxSeq()),
			Low:       sc.low,
			Granted:   sc.cfg.Granted,
		})
	}
	return out
}

// Grant adds the block g to a granted scheme's counter (the
// grant_serials command) and returns how many numbers the scheme has
// left. The block is in force only once it is stored. A request the
// scheme refuses (unknown or free scheme, a block below the numbers
// issued, overlapping or past the counter's width) is a *wire.Error with
// wire.CodeBadArgs; a grant equal to one held changes nothing and is no
// error.
func (a *Assigner) Grant(ctx context.Context, g serials.Grant) (remaining uint64, err error) {
	sc := a.schemes[g.Scheme]
	if sc == nil {
		return 0, badArgs("grant_serials: scheme: %q is not a scheme of this gateway", g.Scheme)
	}
	a.assign.Lock()
	defer a.assign.Unlock()
	a.mu.Lock()
	cur := sc.counter
	a.mu.Unlock()
	maxSeq := sc.cfg.Template.MaxSeq()
	next, err := cur.Grant(g, maxSeq)
	if err != nil {
		return 0, &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
	}
	if len(next.Blocks) != len(cur.Blocks) { // a retried grant adds nothing
		b, err := json.Marshal(next)
		if err != nil {
			return 0, fmt.Errorf("grant_serials: encode the counter: %w", err)
		}
		if _, err := a.o.Store.SubmitWrite(ctx, buffer.Write{State: []buffer.StateValue{{Key: counterKey(g.Scheme), Value: b}}})(); err != nil {
			return 0, fmt.Errorf("grant_serials: store the counter of %s: %w", g.Scheme, err)
		}
		a.o.Log.Info("serial block granted", "scheme", g.Scheme, "from", g.From, "to", g.To)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sc.counter = next
	a.levels(sc)
	return next.Remaining(maxSeq), nil
}

func badArgs(format string, args ...any) error {
	return &wire.Error{Code: wire.CodeBadArgs, Message: fmt.Sprintf(format, args...)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type metrics struct {
	remaining, low *prometheus.GaugeVec // scheme
	issued         *prometheus.CounterVec
	ready, waiting *prometheus.GaugeVec // printer
	notReady       *prometheus.GaugeVec // printer, reason
	jobs           *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_serials_remaining",
			Help: "Numbers a serial scheme's counter can still issue: up to its width's end (free) or in its granted blocks.",
		}, []string{"scheme"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_serials_issued_total",
			Help: "Serials issued and committed, by scheme (re-prints are not counted).",
		}, []string{"scheme"}),
		low: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_serials_low",
			Help: "1 while a scheme has fewer numbers left than its low water.",
		}, []string{"scheme"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_printer_ready",
			Help: "1 when the printer's last status check or send found it able to print.",
		}, []string{"printer"}),
		notReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_printer_not_ready",
			Help: "1 for the reason a printer is not sent to: paper_out, head_open, paused, unreachable, no_status …",
		}, []string{"printer", "reason"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_printer_jobs_waiting",
			Help: "Print jobs stored and not yet printed.",
		}, []string{"printer"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_printer_jobs_total",
			Help: "Print jobs finished, by result: printed, or in_doubt (cut off mid-send; not sent again, re-print to repair).",
		}, []string{"printer", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.remaining, m.issued, m.low, m.ready, m.notReady, m.waiting, m.jobs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// highestIssued is the highest counter among a scheme's issue records
// (0 for none).
func (a *Assigner) highestIssued(scheme string) (uint64, error) {
	recs, err := a.o.Store.ListState(issuedKey(scheme, ""))
	if err != nil {
		return 0, err
	}
	var top uint64
	for _, r := range recs {
		var rec issued
		if json.Unmarshal(r.Value, &rec) == nil {
			top = max(top, rec.Counter)
		}
	}
	return top, nil
}
