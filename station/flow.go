package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// A station's workflow (package workflow) is its mode, its context, the
// progress of the order in context and the aggregation it has open. Every
// change of it is stored in one buffer transaction with the events that
// report it (Store.SubmitWrite): a power cut leaves both or neither, so
// the progress after a reboot is the progress the central side heard of.
//
// A read that changes the workflow is stored and its commit waited for
// before the next read of the station is judged (under flowMu), since the
// next read is judged against the state it made. Reads that change
// nothing (the usual scan) go through the pipeline as before, sharing
// commits. Steps of the aggregation modes of every station run one at a
// time (Index.agg): that is what keeps one child out of two parents
// packed at two stations at once.

// Index is the gateway's workflow index, shared by its stations: the
// units counted per order, the children of aggregations. It lives in the
// buffer's state and is read from there (a point lookup; an index of
// months of scans does not fit a small box's memory); each step's writes
// go in the step's transaction, so a read after the commit sees them.
// Entries expire after the buffer's seen retention, like the seen-serial
// index. Without a buffer (tests, tools) it is a map in memory.
type Index struct {
	load func(key string) ([]byte, error)
	ttl  time.Duration
	log  *slog.Logger

	mu  sync.Mutex
	mem map[string]string // load == nil

	agg sync.Mutex // one aggregation step of any station at a time
}

// NewIndex is the index in a buffer's state (load is its LoadState),
// its entries kept for ttl (0: for ever); load nil keeps it in memory.
func NewIndex(load func(key string) ([]byte, error), ttl time.Duration, log *slog.Logger) *Index {
	return &Index{load: load, ttl: ttl, log: log, mem: map[string]string{}}
}

// Get is workflow.Index. A read that fails for another reason than a
// missing key counts as missing, and is logged: a step must not block on
// a disk that cannot answer.
func (x *Index) Get(key string) (string, bool) {
	if x.load == nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		v, ok := x.mem[key]
		return v, ok
	}
	b, err := x.load(key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && x.log != nil {
			x.log.Error("workflow index unreadable", "key", key, "err", err)
		}
		return "", false
	}
	return string(b), true
}

// apply puts a committed step's writes in an index kept in memory.
func (x *Index) apply(ws []workflow.Write) {
	if x.load != nil || len(ws) == 0 {
		return // in the buffer: the commit wrote them
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, w := range ws {
		if w.Value == nil {
			delete(x.mem, w.Key)
		} else {
			x.mem[w.Key] = *w.Value
		}
	}
}

func (x *Index) stateValues(ws []workflow.Write) []buffer.StateValue {
	out := make([]buffer.StateValue, 0, len(ws))
	for _, w := range ws {
		sv := buffer.StateValue{Key: w.Key}
		if w.Value != nil {
			sv.Value, sv.TTL = []byte(*w.Value), x.ttl
		}
		out = append(out, sv)
	}
	return out
}

// noRules stands in for a validator that carries no workflow rules.
type noRules struct{}

func (noRules) Documents() []workflow.Pattern       { return nil }
func (noRules) Order(string) (workflow.Order, bool) { return workflow.Order{}, false }

func (noRules) Children(string) (workflow.Children, bool) { return workflow.Children{}, false }

func rulesOf(v Validator) workflow.Rules {
	if r, ok := v.(workflow.Rules); ok {
		return r
	}
	return noRules{}
}

// aggregating reports whether mode packs, builds or unpacks.
func aggregating(mode string) bool {
	return mode == "pack" || mode == "build" || mode == "unpack"
}

// lockFlow takes the station's workflow lock, and the gateway's
// aggregation lock when the station aggregates; the returned func
// releases both.
func (s *Station) lockFlow() func() {
	s.flowMu.Lock()
	if aggregating(s.flowState().Mode) {
		s.index.agg.Lock()
		return func() { s.index.agg.Unlock(); s.flowMu.Unlock() }
	}
	return s.flowMu.Unlock
}

// flowState is the workflow state in force; it must not be modified.
func (s *Station) flowState() *workflow.State { return s.flowSt.Load() }

// step runs one workflow step on the state in force. The caller holds
// lockFlow.
func (s *Station) step(set *settings, in workflow.Input) workflow.Outcome {
	return workflow.Step(set.flow, rulesOf(set.valid), s.index, s.flowState(), in)
}

// events are the records of an outcome's events besides a scan.
func (s *Station) events(out workflow.Outcome) []buffer.Record {
	var recs []buffer.Record
	synced, now := s.synced(), s.now()
	// record numbers data with the seq the buffer gives it, at commit.
	record := func(typ, id string, data any, number func(seq uint64, epoch string)) buffer.Record {
		return buffer.Record{Stream: wire.EventStream(s.cfg.ID), Build: func(seq uint64) ([]byte, error) {
			number(seq, s.store.Epoch())
			return wire.Event{ID: id, Source: s.source, Type: typ, Time: now, Data: data}.Encode()
		}}
	}
	for i := range out.Contexts {
		c := &out.Contexts[i]
		c.Station, c.ClockSynced = s.cfg.ID, synced
		recs = append(recs, record(wire.ContextType, wire.NewID(), c, func(q uint64, e string) { c.Seq, c.Epoch = q, e }))
	}
	if o := out.Order; o != nil {
		o.Station, o.ClockSynced = s.cfg.ID, synced
		recs = append(recs, record(wire.OrderType, wire.NewID(), o, func(q uint64, e string) { o.Seq, o.Epoch = q, e }))
	}
	for i := range out.Aggregations {
		a := &out.Aggregations[i]
		a.Station, a.ClockSynced = s.cfg.ID, synced
		id := wire.NewID()
		recs = append(recs, record(wire.AggregationType, id, a, func(q uint64, e string) { a.Seq, a.Epoch = q, e }))
		if r, ok := s.epcisAggregation(id, now, a); ok {
			recs = append(recs, r)
		}
	}
	return recs
}

// commitStep stores an outcome's events (after recs) and its state in one
// transaction, waits for it, and only then puts the new state in force.
// The caller holds lockFlow.
func (s *Station) commitStep(ctx context.Context, out workflow.Outcome, recs []buffer.Record, state ...buffer.StateValue) ([]uint64, error) {
	w := buffer.Write{Records: append(recs, s.events(out)...), State: append(s.index.stateValues(out.Writes), state...)}
	next := out.Next
	if len(w.Records) == 0 && len(w.State) == 0 && next == nil {
		return nil, nil // a refused document: nothing to store
	}
	if next != nil {
		b, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("encode station state: %w", err)
		}
		w.State = append(w.State, buffer.StateValue{Key: s.stateKey(), Value: b})
	}
	seqs, err := s.store.SubmitWrite(ctx, w)()
	if err != nil {
		return nil, err
	}
	if next != nil {
		s.flowSt.Store(next)
		if !sameContext(next, s.lastCtx) {
			s.settings.Load().repeats.forget()
			s.log.Info("station state changed", "mode", next.Mode, "context", next.Context)
		}
		s.lastCtx = next
	}
	s.index.apply(out.Writes)
	return seqs, nil
}

func sameContext(a, b *workflow.State) bool {
	return b != nil && a.Mode == b.Mode && maps.Equal(a.Context, b.Context)
}

// findings applies the workflow's findings to a scan's verdict.
func findings(scan *Scan, fs []workflow.Finding) {
	for _, f := range fs {
		scan.Reasons = append(scan.Reasons, f.Reason)
		switch {
		case f.Policy == "reject":
			scan.Verdict = Rejected
		case f.Policy == "warn" && scan.Verdict == Accepted:
			scan.Verdict = Warning
		}
	}
}

// command runs a command's step: a mode or context change, a close or
// cancel of the open aggregation.
func (s *Station) command(ctx context.Context, in workflow.Input) error {
	unlock := s.lockFlow()
	defer unlock()
	out := s.step(s.settings.Load(), in)
	if out.Err != nil {
		return out.Err
	}
	if !changes(out) {
		return nil
	}
	if _, err := s.commitStep(ctx, out, nil); err != nil {
		return fmt.Errorf("record the change: %w", err)
	}
	return nil
}

// CloseAggregation closes the station's open aggregation, as a close code
// would.
func (s *Station) CloseAggregation(ctx context.Context) error {
	return s.command(ctx, workflow.Input{Time: s.now(), Command: &workflow.Command{Kind: workflow.CloseAggregation}})
}

// CancelAggregation drops the station's open aggregation.
func (s *Station) CancelAggregation(ctx context.Context) error {
	return s.command(ctx, workflow.Input{Time: s.now(), Command: &workflow.Command{Kind: workflow.CancelAggregation}})
}

// isRequestError reports a command the station refused for its own
// reasons (wire.CodeBadArgs).
func isRequestError(err error) bool {
	for _, e := range []error{workflow.ErrBadMode, workflow.ErrBadContext, workflow.ErrAggregationOpen, workflow.ErrNothingOpen, workflow.ErrBadCommand, workflow.ErrTooFewChildren} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// changes reports whether an outcome has anything to store.
func changes(out workflow.Outcome) bool {
	return out.Next != nil || len(out.Writes) > 0 || len(out.Contexts) > 0 || out.Order != nil || len(out.Aggregations) > 0
}

// inert reports whether a read cannot touch the workflow at all: no
// document patterns, not an aggregation or assign mode, no order in
// context, no idle time-out, no label awaiting its verify read. Such a
// read skips the step: the usual scan at a conveyor costs nothing more.
func (s *Station) inert(set *settings) bool {
	st := s.flowState()
	return len(set.flow.Documents) == 0 && set.flow.Idle == 0 && !aggregating(st.Mode) && st.Mode != "assign" && s.verify.Load() == nil &&
		st.Context[wire.DocOrder] == "" && st.Context[wire.DocPick] == "" && st.Open == nil && len(rulesOf(set.valid).Documents()) == 0
}

// record submits a judged scan: through the workflow step when the
// workflow may care, which can make the read a document (stored as a
// context event instead) or add findings and events to it. validated
// says whether set's validator judged the scan (rather than decode).
func (s *Station) record(ctx context.Context, a *answer, set *settings, validated bool) {
	scan := a.scan
	if st := s.flowState(); s.inert(set) && st.Mode == scan.Mode && maps.Equal(st.Context, scan.Context) {
		s.hold(a, set)
		a.pending = s.submitScan(ctx, scan)
		return
	}
	unlock := s.lockFlow()
	defer unlock()
	if cur := s.flowState(); cur.Mode != scan.Mode || !maps.Equal(cur.Context, scan.Context) {
		// Another scanner's document changed the state since this read
		// was decoded: it is judged and stored under the state it is
		// counted against.
		scan.Mode, scan.Context = cur.Mode, cur.Context
		if validated {
			scan.Verdict, scan.Reasons, scan.Fields, scan.Key, scan.RulesVersion = "", nil, nil, "", ""
			set.valid.Validate(scan)
		}
	}
	if v := s.verify.Load(); v != nil && s.assigner != nil {
		s.verifyRead(ctx, a, set, v)
		return
	}
	in := workflow.Input{Time: scan.Time, Read: &workflow.Read{
		Scan: scan.ID, Scanner: scan.Scanner, Raw: string(scan.Data), Fields: scan.Fields, Unit: scan.Key, Verdict: scan.Verdict,
	}}
	out := s.step(set, in)
	if !out.Document {
		findings(scan, out.Findings)
		s.hold(a, set)
	}
	if s.assignOnRead(ctx, a, set, in, out) {
		return
	}
	if out.Document {
		a.scan, a.doc = nil, &document{Document: wire.Document{Kind: out.Kind, Value: out.Value}, sig: signalOf(out.Signal), findings: out.Findings}
		a.pending = first(s.commitStep(ctx, out, nil))
		return
	}
	if !changes(out) {
		a.pending = s.submitScan(ctx, scan)
		return
	}
	a.pending = first(s.commitStep(ctx, out, s.scanRecords(scan)))
}

func (s *Station) hold(a *answer, set *settings) {
	if h, ok := set.valid.(Holder); ok {
		a.release = h.Hold(a.scan)
	}
}

// scanRecords are a scan's event and, with EPCIS on, its EPCIS rendering.
func (s *Station) scanRecords(scan *Scan) []buffer.Record {
	recs := []buffer.Record{{Stream: wire.ScanStream(s.cfg.ID), Build: func(seq uint64) ([]byte, error) {
		return EncodeScan(scan, s.source, seq, s.store.Epoch())
	}}}
	if r, ok := s.epcisScan(scan); ok {
		recs = append(recs, r)
	}
	return recs
}

// submitScan queues a scan (and its EPCIS rendering) without waiting.
func (s *Station) submitScan(ctx context.Context, scan *Scan) func() (uint64, error) {
	recs := s.scanRecords(scan)
	if len(recs) == 1 {
		return s.store.Submit(ctx, recs[0].Stream, recs[0].Build)
	}
	wait := s.store.SubmitWrite(ctx, buffer.Write{Records: recs})
	return func() (uint64, error) {
		seqs, err := wait()
		if err != nil {
			return 0, err
		}
		return seqs[0], nil
	}
}

// first makes a done write's result a wait func of its first seq.
func first(seqs []uint64, err error) func() (uint64, error) {
	return func() (uint64, error) {
		if err != nil {
			return 0, err
		}
		if len(seqs) == 0 {
			return 0, nil
		}
		return seqs[0], nil
	}
}

// document is a document read on its way to its answer.
type document struct {
	wire.Document
	sig      device.Signal
	findings []workflow.Finding // why a document was refused
}

func signalOf(s string) device.Signal {
	switch s {
	case workflow.SignalWarn:
		return device.Warn
	case workflow.SignalBad:
		return device.Bad
	}
	return device.Good
}

// flowStatus puts the workflow's progress in a station's status.
func flowStatus(fs *workflow.State, st *wire.StationStatus) {
	if o := fs.Order; o != nil {
		os := &wire.OrderState{Order: o.Name, Lines: o.Lines, Over: o.Over, Unexpected: o.Unexpected, WrongSerial: o.WrongSerial, Complete: o.Complete}
		for _, l := range o.Lines {
			os.Counted += l.Counted
			os.Remaining += max(l.Expected-l.Counted, 0)
		}
		st.Order = os
	}
	if a := fs.Open; a != nil {
		st.Aggregation = &wire.OpenAggregation{Mode: a.Mode, Parent: a.Parent, Children: len(a.Children), Opened: a.Opened}
	}
}
