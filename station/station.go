// Package station is one scan station's pipeline: it turns raw reads from
// the station's scanners into scans, judges them, has them stored durably,
// and only then tells the operator the verdict.
//
// The order is the point: decode (AIM prefix, text checks), validate
// (through a Validator), append to the durable store, and give feedback
// after the store's sync returned. A scan that cannot be stored gets the bad
// signal and is counted as refused; it is never reported as good. Rejected
// scans are stored and forwarded too: the central side wants to see them.
//
// Between validation and the store sits the station's workflow (package
// workflow, flow.go): a read may be a document that sets the context, a
// unit counted against an order, a child of a pack, or a request for a
// serial (serial.go, package assign). What it changes is stored in one
// transaction with the events that report it, and is in force only once
// that transaction committed.
package station

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/epcis"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// Scanner is what a station needs from a device driver.
type Scanner interface {
	ID() string
	// Run delivers frames to handle, one at a time, until ctx ends.
	Run(ctx context.Context, handle func(context.Context, device.Read)) error
	// Feedback tells the scanner the verdict.
	Feedback(device.Signal) error
}

// Store is what a station needs from the durable buffer.
type Store interface {
	// SubmitWrite is Submit for several events and state values that
	// are stored in one transaction, all or none (buffer.Write); wait
	// returns the events' seqs.
	SubmitWrite(ctx context.Context, w buffer.Write) (wait func() ([]uint64, error))
	// Submit queues an event of stream (wire.ScanStream, ...) to be
	// stored and returns at once; build makes the payload once the seq is
	// known. wait returns the event's seq only once it is durable, or why
	// it was not stored. Events are stored in the order they were
	// submitted, several in one commit when they queue up.
	Submit(ctx context.Context, stream string, build func(seq uint64) ([]byte, error)) (wait func() (uint64, error))
	Epoch() string
}

// Indicator takes live notices: each read's outcome, for a display or
// stack light. It must not block.
type Indicator interface {
	Notify(stream string, payload []byte)
}

// Validator judges a decoded scan. It sets Verdict, Reasons and
// RulesVersion; it must not block (rules are cached locally).
type Validator interface {
	Validate(s *Scan)
}

// StateStore keeps the station's mode and context across reboots.
type StateStore interface {
	LoadState(key string) ([]byte, error)
	SaveState(key string, value []byte) error
}

// Config describes one station.
type Config struct {
	ID      string
	Mode    string
	Site    string
	Gateway string
	// Debounce suppresses a read identical to one the station stored from
	// any of its scanners within this window: two readers of one tunnel
	// reading the same label. 0: off.
	Debounce time.Duration
	// ScannerDebounce is the same per scanner (by id): one reader that
	// reads a label several times as it passes.
	ScannerDebounce map[string]time.Duration
	// NoReadEvents records each no-read as a buffered wire.NoReadType
	// event (a conveyor's reject gate needs to know).
	NoReadEvents bool
	// Flow is the station's workflow: documents, orders, aggregation
	// (its Station is set from ID).
	Flow workflow.Config
	// EPCIS, when set, renders the station's scans and aggregations as
	// EPCIS 2.0 documents on wire.EPCISStream too.
	EPCIS *epcis.Config
	// Assign, when set, makes the station assign serials (Deps.Assigner).
	Assign *AssignConfig
}

// Deps are what a station works with.
type Deps struct {
	Scanners  []Scanner
	Store     Store
	State     StateStore // nil: mode and context live in memory only
	Validator Validator
	Metrics   *Metrics
	Log       *slog.Logger
	// ClockSynced reports whether the system clock can be trusted (a Pi
	// has no RTC); nil means KernelClockSynced.
	ClockSynced func() bool
	// Indicator, when set, gets the outcome of every read after its
	// commit (for keyboard-wedge scanners, the only durable verdict).
	Indicator Indicator
	// Index is the gateway's workflow index, shared by its stations;
	// nil: one of the station's own, in memory.
	Index *Index
	// Assigner assigns serials for the stations with Config.Assign.
	Assigner *assign.Assigner
}

// Station runs one station's pipeline.
type Station struct {
	cfg     Config // the id, site and gateway; the rest may change (settings)
	store   Store
	state   StateStore
	log     *slog.Logger
	m       *Metrics
	source  string
	ind     Indicator
	synced  func() bool
	now     func() time.Time
	running atomic.Bool
	recent  recent
	garbled rateLog // reads with control characters
	rates   readRates

	// settings are what a live reload changes; each read takes them once.
	settings atomic.Pointer[settings]

	updateMu sync.Mutex // one Update at a time
	loopMu   sync.Mutex // loops and stopping
	loops    []*loop
	stopping []*loop // removed by an Update, not yet returned
	runs     group

	// The workflow: flowSt is the state in force (read without a lock);
	// flowMu orders the steps that change it (lockFlow).
	flowMu  sync.Mutex
	flowSt  atomic.Pointer[workflow.State]
	lastCtx *workflow.State // under flowMu: the state last logged
	index   *Index

	assigner *assign.Assigner
	verify   atomic.Pointer[verifying] // the serial awaited, changed under flowMu
}

// settings are a station's configuration that a reload may change while
// its scanners read on.
type settings struct {
	cfg     Config
	valid   Validator
	repeats *debouncer
	flow    workflow.Config
}

func newSettings(cfg Config, valid Validator, repeats *debouncer) *settings {
	f := cfg.Flow
	f.Station = cfg.ID
	return &settings{cfg: cfg, valid: valid, repeats: repeats, flow: f}
}

// New makes a station, restoring the mode and context it had before a
// restart when a StateStore holds them.
func New(cfg Config, d Deps) *Station {
	if d.ClockSynced == nil {
		d.ClockSynced = cachedClock(KernelClockSynced, clockCheckEvery)
	}
	s := &Station{
		cfg:    cfg,
		store:  d.Store,
		state:  d.State,
		log:    d.Log.With("station", cfg.ID),
		m:      d.Metrics,
		source: wire.StationSource(cfg.Site, cfg.Gateway, cfg.ID),
		ind:    d.Indicator,
		synced: d.ClockSynced,
		now:    time.Now,
		index:  d.Index,

		assigner: d.Assigner,
	}
	if s.index == nil {
		s.index = NewIndex(nil, 0, nil)
	}
	s.settings.Store(newSettings(cfg, d.Validator, newDebouncer(cfg.Debounce, cfg.ScannerDebounce)))
	for _, sc := range d.Scanners {
		s.loops = append(s.loops, s.newLoop(sc))
	}
	if s.m != nil { // at 0 from the start: rate() and alerts see the first scan
		for _, v := range []string{Accepted, Rejected, Warning} {
			s.m.scans.WithLabelValues(cfg.ID, v)
		}
		s.m.refused.WithLabelValues(cfg.ID)
	}
	s.restore()
	s.restoreVerify()
	return s
}

// Status reports the station: its mode and context, whether its pipeline
// runs, and which scanners are up. A scanner whose driver cannot tell (no
// Connected method) counts as up.
func (s *Station) Status() wire.StationStatus {
	fs := s.flowState()
	scanners := s.Scanners()
	st := wire.StationStatus{ID: s.cfg.ID, Mode: fs.Mode, Context: fs.Context, Running: s.Running(),
		Scanners: make([]wire.ScannerStatus, 0, len(scanners))}
	flowStatus(fs, &st)
	if v := s.verify.Load(); v != nil {
		st.Verify = v.Serial
	}
	for _, sc := range scanners {
		up := true
		if c, ok := sc.(interface{ Connected() bool }); ok {
			up = c.Connected()
		}
		st.Scanners = append(st.Scanners, wire.ScannerStatus{ID: sc.ID(), Up: up, ReadRate: s.rates.rate(sc.ID())})
	}
	return st
}

// ID is the station's id.
func (s *Station) ID() string { return s.cfg.ID }

// Running reports whether the station's pipeline is up.
func (s *Station) Running() bool { return s.running.Load() }

// Ready reports whether the station takes scans as configured: its
// pipeline is up and every scanner has settled, opened and configured or
// failed to open (a scanner that is unplugged does not hold the station
// back; one that is being opened does, since a read then would meet a
// half-configured port). A scanner that cannot tell (no Settled method)
// counts as settled.
func (s *Station) Ready() bool {
	if !s.Running() {
		return false
	}
	for _, sc := range s.Scanners() {
		if st, ok := sc.(interface{ Settled() bool }); ok && !st.Settled() {
			return false
		}
	}
	return true
}

// Scanners returns the station's scanners in their configured order.
func (s *Station) Scanners() []Scanner {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	out := make([]Scanner, len(s.loops))
	for i, l := range s.loops {
		out[i] = l.sc
	}
	return out
}

// Run drives every scanner of the station until ctx ends or one fails.
func (s *Station) Run(ctx context.Context) error {
	s.loopMu.Lock()
	s.runs.begin(ctx)
	for _, l := range s.loops {
		s.runs.start(l, s.readLoop(ctx, l))
	}
	s.loopMu.Unlock()
	s.running.Store(true)
	defer s.running.Store(false)
	tctx, stop := context.WithCancel(ctx)
	ticked := make(chan struct{})
	go func() { defer close(ticked); s.ticks(tctx) }()
	defer func() { stop(); <-ticked }()
	return s.runs.wait()
}

// tickEvery is how often a station looks for an idle context (and a
// verification that timed out).
const tickEvery = time.Second

// ticks runs the workflow's time-outs until ctx ends.
func (s *Station) ticks(ctx context.Context) {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		}
	}
}

// tick expires an idle context and a verification nobody scanned. The
// checks before the lock keep an idle station from taking it every
// second.
func (s *Station) tick(ctx context.Context) {
	s.verifyTimeout(ctx)
	idle := s.settings.Load().flow.Idle
	fs := s.flowState()
	if idle <= 0 || len(fs.Context) == 0 || fs.Touched.IsZero() || s.now().Sub(fs.Touched) < idle {
		return
	}
	if err := s.command(ctx, workflow.Input{Time: s.now()}); err != nil {
		s.log.Warn("idle context not cleared", "err", err)
	}
}

// Busy reports since when the station's longest-running read has been in
// its pipeline (decode, store, feedback); zero when every scanner waits
// for a read. The watchdog reads it: a read that never completes is a
// wedged station.
func (s *Station) Busy() time.Time {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	var oldest int64
	for _, l := range slices.Concat(s.loops, s.stopping) {
		if b := l.oldest(); b != 0 && (oldest == 0 || b < oldest) {
			oldest = b
		}
	}
	if oldest == 0 {
		return time.Time{}
	}
	return time.Unix(0, oldest)
}

// Update is what a live reload changes in a station.
type Update struct {
	// Config must keep the station's ID, Site and Gateway. A changed
	// Mode switches the station to it (as a downlink set_mode would);
	// an unchanged one leaves the mode the station is in.
	Config Config
	// Scanners is the new list. A scanner in both lists (the same
	// value) reads on undisturbed; one only in the old list is stopped,
	// once its read in hand is stored and answered, before any new one
	// starts, so a new scanner can open the port an old one held.
	Scanners  []Scanner
	Validator Validator
}

// Update applies a reload to the running (or not yet running) station.
func (s *Station) Update(ctx context.Context, u Update) error {
	c := u.Config
	if c.ID != s.cfg.ID || c.Site != s.cfg.Site || c.Gateway != s.cfg.Gateway {
		return fmt.Errorf("station %s: id, site and gateway cannot change live", s.cfg.ID)
	}
	old := s.settings.Load()
	if c.Mode != old.cfg.Mode {
		if err := s.SetMode(ctx, c.Mode); err != nil {
			return err
		}
	}
	repeats := old.repeats
	if c.Debounce != old.cfg.Debounce || !maps.Equal(c.ScannerDebounce, old.cfg.ScannerDebounce) {
		repeats = newDebouncer(c.Debounce, c.ScannerDebounce)
	}
	s.settings.Store(newSettings(c, u.Validator, repeats))

	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.loopMu.Lock()
	var kept, gone []*loop
	for _, l := range s.loops {
		if slices.Contains(u.Scanners, l.sc) {
			kept = append(kept, l)
		} else {
			gone = append(gone, l)
		}
	}
	loops := make([]*loop, 0, len(u.Scanners))
	var added []*loop
	for _, sc := range u.Scanners {
		i := slices.IndexFunc(kept, func(l *loop) bool { return l.sc == sc })
		if i < 0 {
			added = append(added, s.newLoop(sc))
			loops = append(loops, added[len(added)-1])
		} else {
			loops = append(loops, kept[i])
		}
	}
	s.loops, s.stopping = loops, gone
	s.loopMu.Unlock()

	// Not under loopMu: a stop waits for the read in hand, and Busy must
	// still see that read meanwhile.
	for _, l := range gone {
		s.runs.stop(l)
	}
	s.loopMu.Lock()
	s.stopping = nil
	runCtx := s.runs.context() // nil when not running: nothing starts
	for _, l := range added {
		s.runs.start(l, s.readLoop(runCtx, l))
	}
	s.loopMu.Unlock()
	return nil
}

// indicate records an outcome for the status page and publishes the
// verdict the operator should see: for a keyboard-wedge scanner, which
// beeps on decode by itself, this is the only durable verdict (sent only
// after the commit, like the good byte).
func (s *Station) indicate(scanner, scanID string, seq uint64, data []byte, verdict string, reasons []Reason) {
	if reasons == nil {
		reasons = []Reason{}
	}
	now := s.now()
	s.recent.add(Outcome{Time: now, Scanner: scanner, Scan: scanID, Seq: seq, Data: outcomeData(data), Verdict: verdict, Reasons: reasons})
	if s.ind == nil {
		return
	}
	b, err := wire.Event{ID: wire.NewID(), Source: s.source, Type: wire.IndicatorType, Time: now, Data: &wire.IndicatorData{
		Station: s.cfg.ID, Scanner: scanner, Scan: scanID, Seq: seq, Verdict: verdict, Reasons: reasons,
	}}.Encode()
	if err == nil {
		s.ind.Notify(wire.IndicatorStream(s.cfg.ID), b)
	}
}

// decode builds the scan and rejects what is not a readable code at all.
func (s *Station) decode(scanner string, r device.Read) *Scan {
	sym, data := r.Symbology, r.Data
	if sym == "" {
		sym, data = ParseAIM(data)
	}
	mode, context := s.State()
	scan := &Scan{
		ID:          wire.NewID(),
		Time:        r.Time,
		Station:     s.cfg.ID,
		Mode:        mode,
		Context:     context,
		Scanner:     scanner,
		Symbology:   sym,
		Data:        data,
		ClockSynced: s.synced(),
	}
	if scan.Time.IsZero() {
		scan.Time = s.now()
	}
	switch {
	case len(data) == 0:
		reject(scan, "empty", "the scan carried no data")
	case !utf8.Valid(data):
		reject(scan, "not_utf8", "the scan is not valid UTF-8 text")
	default:
		if i := nonPrintable(data); i >= 0 {
			reject(scan, "non_printable", fmt.Sprintf("control character 0x%02X at byte %d", data[i], i))
		}
	}
	return scan
}

func reject(s *Scan, code, msg string) {
	s.Verdict = Rejected
	s.Reasons = append(s.Reasons, Reason{Code: code, Message: msg})
}

// nonPrintable returns the index of the first control character, or -1.
// GS, RS and EOT are allowed: they are the separators of GS1 element strings
// (FNC1 sent as GS) and of ISO/IEC 15434 formatted data.
func nonPrintable(data []byte) int {
	for i, c := range data {
		if (c < 0x20 && c != 0x1D && c != 0x1E && c != 0x04) || c == 0x7F {
			return i
		}
	}
	return -1
}

func (s *Station) feedback(l *loop, sig device.Signal) {
	if err := l.sc.Feedback(sig); err != nil {
		l.log.Warn("feedback not delivered", "signal", sig.String(), "err", err)
		s.m.feedbackErrors.WithLabelValues(s.cfg.ID).Inc()
	}
}

// Metrics are the station pipeline's metrics, shared by all stations.
type Metrics struct {
	reads          *prometheus.CounterVec
	suppressed     *prometheus.CounterVec
	noreadEvents   *prometheus.CounterVec
	scans          *prometheus.CounterVec
	refused        *prometheus.CounterVec
	discarded      *prometheus.CounterVec
	feedbackErrors *prometheus.CounterVec
	epcisSkipped   *prometheus.CounterVec
	storeSeconds   prometheus.Histogram
}

// NewMetrics registers the station metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_reads_total",
			Help: "Frames from each scanner: codes, repeats, no-reads and discarded reads. With scangw_device_noreads_total it gives a reader's read rate.",
		}, []string{"station", "scanner"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_reads_suppressed_total",
			Help: "Reads not stored because they repeat one within the debounce window (answered like the first), by reason.",
		}, []string{"station", "scanner", "reason"}),
		noreadEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_noread_events_total",
			Help: "No-reads recorded as buffered events (noread_events), by result: stored or refused (not stored).",
		}, []string{"station", "result"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_scans_total",
			Help: "Scans stored, by station and verdict.",
		}, []string{"station", "verdict"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_scans_refused_total",
			Help: "Scans that could not be stored; the operator got the bad signal.",
		}, []string{"station"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_reads_discarded_total",
			Help: "Reads discarded before they became scans, by reason.",
		}, []string{"station", "reason"}),
		feedbackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_feedback_errors_total",
			Help: "Feedback that could not be written to the scanner.",
		}, []string{"station"}),
		epcisSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_station_epcis_skipped_total",
			Help: "Facts that got no EPCIS event because it could not be rendered (the fact itself is stored), by reason.",
		}, []string{"station", "reason"}),
		storeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scangw_station_store_duration_seconds",
			Help:    "Time from a scan's decode to its durable commit.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
	}
	reg.MustRegister(m.reads, m.suppressed, m.noreadEvents, m.scans, m.refused, m.discarded, m.feedbackErrors, m.epcisSkipped, m.storeSeconds)
	return m
}

// rateLog lets one log line through per rateLogEvery and counts the
// others.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const rateLogEvery = 10 * time.Second

// allow reports whether a line may be logged now, and how many were held
// back since the last one.
func (r *rateLog) allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < rateLogEvery {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
