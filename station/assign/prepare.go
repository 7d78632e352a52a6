package assign

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
)

// Request is one assignment, re-print or verification at a station.
type Request struct {
	Scheme, Station string
	// Printer is the id of the printer for the label; "" prints none.
	Printer string
	// Label is the station's label template; nil is label.DefaultTemplate.
	Label *label.Template
	// GTIN, Lot and Expiry (YYMMDD) are the product, from the trigger
	// read or the station's context; Product is a name or SKU for the
	// label's text.
	GTIN, Lot, Expiry, Product string
	Operator                   string
	Context                    map[string]string
	// Trigger is wire.TriggerRead, TriggerCommand or TriggerLocal.
	Trigger string
	// Time is when it happened (Options.Now when zero); the serial's date
	// parts are its local date.
	Time time.Time
	// Source is the station's CloudEvents source (wire.StationSource).
	Source      string
	ClockSynced bool
}

// Prepared is an assignment or re-print reserved under the assign lock:
// what the caller stores, in one buffer Write with its own records, and
// then reports with Done.
type Prepared struct {
	// Records is the assigned event, on wire.EventStream(station).
	Records []buffer.Record
	// State is the advanced counter, the serial's issue record, the
	// station's last serial and the print job, as the Write sets them.
	State []buffer.StateValue
	// Serial and Counter are the serial and the number it was made from.
	Serial  string
	Counter uint64
	// EventID is the id of the event in Records; Data its data (Seq and
	// Epoch are filled in when the buffer numbers it).
	EventID string
	Data    wire.AssignedData
	// Done must be called exactly once, with whether the Write
	// committed: true puts the counter and the print job in force, false
	// forgets them (the number is issued again next time). It releases
	// the assign lock; until it is called no other assignment can start.
	Done func(committed bool)
}

// issued is the value of a serial's issue record.
type issued struct {
	GTIN    string    `json:"gtin,omitempty"`
	Lot     string    `json:"lot,omitempty"`
	Expiry  string    `json:"expiry,omitempty"`
	Product string    `json:"product,omitempty"`
	Station string    `json:"station"`
	Event   string    `json:"event"`
	Counter uint64    `json:"counter"`
	Time    time.Time `json:"time"`
}

// last is the value of a station's last serial.
type last struct {
	Scheme string `json:"scheme"`
	Serial string `json:"serial"`
}

// Prepare reserves the next serial of req.Scheme for req.Station; see
// Prepared for what the caller does with it. It refuses, before
// reserving anything, an unknown scheme, station or printer, a value the
// scheme's template needs and req lacks, a serial or label that does not
// render (each a *wire.Error with wire.CodeBadArgs), and a scheme without
// numbers left (an error wrapping serials.ErrExhausted).
func (a *Assigner) Prepare(req Request) (*Prepared, error) {
	sc := a.schemes[req.Scheme]
	if sc == nil {
		return nil, badArgs("assign: scheme: %q is not a scheme of this gateway", req.Scheme)
	}
	lt, err := a.check(req)
	if err != nil {
		return nil, err
	}
	gtin, lot, expiry := sc.cfg.Template.Needs()
	var missing []string
	for _, n := range []struct {
		need bool
		v    string
		name string
	}{{gtin, req.GTIN, "gtin"}, {lot, req.Lot, "lot"}, {expiry, req.Expiry, "expiry"}} {
		if n.need && n.v == "" {
			missing = append(missing, n.name)
		}
	}
	if len(missing) > 0 {
		return nil, badArgs("assign: scheme %s makes serials from %s: missing", req.Scheme, strings.Join(missing, ", "))
	}
	a.assign.Lock()
	p, err := a.prepare(sc, req, lt, a.at(req))
	if err != nil {
		a.assign.Unlock()
		return nil, err
	}
	return p, nil
}

func (a *Assigner) prepare(sc *scheme, req Request, lt *label.Template, at time.Time) (*Prepared, error) {
	name := sc.cfg.Name
	a.mu.Lock()
	cur, n := sc.counter, a.nextJob
	a.mu.Unlock()
	seq, next, err := cur.Issue(sc.cfg.Template.MaxSeq())
	if err != nil {
		return nil, fmt.Errorf("assign: scheme %s: %w", name, err)
	}
	serial, err := sc.cfg.Template.Render(serials.Values{
		Site: a.o.Site, Gateway: a.o.Gateway, Station: req.Station,
		GTIN: req.GTIN, Lot: req.Lot, Expiry: req.Expiry, Time: at.Local(), Seq: seq,
	})
	if err != nil {
		return nil, badArgs("assign: scheme %s: %v", name, err)
	}
	switch _, err := a.issued(name, serial); {
	case err == nil:
		return nil, fmt.Errorf("assign: scheme %s: serial %s was issued before: the stored counter (next %d) is behind the serials issued, and is not used", name, serial, cur.Next)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	id := wire.NewID()
	data := wire.AssignedData{
		Station: req.Station, Status: wire.AssignIssued, Scheme: name, Serial: serial, Counter: seq,
		GTIN: req.GTIN, Lot: req.Lot, Expiry: req.Expiry, Trigger: req.Trigger, Printer: req.Printer,
		Operator: req.Operator, Context: maps.Clone(req.Context), ClockSynced: req.ClockSynced,
	}
	state, err := jsonState(
		keyed{counterKey(name), next},
		keyed{issuedKey(name, serial), issued{
			GTIN: req.GTIN, Lot: req.Lot, Expiry: req.Expiry, Product: req.Product,
			Station: req.Station, Event: id, Counter: seq, Time: at,
		}},
		keyed{lastKey(req.Station), last{Scheme: name, Serial: serial}},
	)
	if err != nil {
		return nil, err
	}
	var job *Job
	if req.Printer != "" {
		v := label.Values{Serial: serial, GTIN: req.GTIN, Product: req.Product, Lot: req.Lot, Expiry: req.Expiry}
		j, sv, err := a.newJob(req, lt, n, v, name, id)
		if err != nil {
			return nil, err
		}
		job, state = &j, append(state, sv...)
	}
	return &Prepared{
		Records: []buffer.Record{a.event(req.Source, id, at, data)},
		State:   state,
		Serial:  serial, Counter: seq, EventID: id, Data: data,
		Done: a.done(func() {
			sc.counter = next
			a.m.issued.WithLabelValues(name).Inc()
			a.levels(sc)
			a.queue(job)
		}),
	}, nil
}

// PrepareReprint prepares a re-print of serial, or of the station's last
// serial when serial is "": an assigned event with status reprint
// (Assigned: the id of the event that issued it) and, when req.Printer
// is set, a print job of a label marked REPRINT (the template must have
// {reprint}), with the product the serial was issued for. The counter
// does not move. A serial names its scheme in req.Scheme; one this
// gateway did not issue, or a station that issued none, is a *wire.Error
// with wire.CodeBadArgs. A re-print to a printer clears the serial's
// in-doubt jobs (InDoubt). Done is called as for Prepare.
func (a *Assigner) PrepareReprint(req Request, serial string) (*Prepared, error) {
	lt, err := a.check(req)
	if err != nil {
		return nil, err
	}
	a.assign.Lock()
	p, err := a.prepareReprint(req, serial, lt, a.at(req))
	if err != nil {
		a.assign.Unlock()
		return nil, err
	}
	return p, nil
}

func (a *Assigner) prepareReprint(req Request, serial string, lt *label.Template, at time.Time) (*Prepared, error) {
	name := req.Scheme
	if serial == "" {
		b, err := a.o.Store.LoadState(lastKey(req.Station))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, badArgs("reprint: station %s has assigned no serial yet", req.Station)
		}
		if err != nil {
			return nil, fmt.Errorf("reprint: %w", err)
		}
		var l last
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("reprint: %s: %w", lastKey(req.Station), err)
		}
		name, serial = l.Scheme, l.Serial
	} else if name == "" {
		return nil, badArgs("reprint: scheme: missing (the scheme of serial %q)", serial)
	}
	rec, err := a.issued(name, serial)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, badArgs("reprint: serial %q was not issued by scheme %q on this gateway", serial, name)
	}
	if err != nil {
		return nil, err
	}
	id := wire.NewID()
	data := wire.AssignedData{
		Station: req.Station, Status: wire.AssignReprint, Scheme: name, Serial: serial, Counter: rec.Counter,
		GTIN: rec.GTIN, Lot: rec.Lot, Expiry: rec.Expiry, Trigger: req.Trigger, Printer: req.Printer,
		Operator: req.Operator, Context: maps.Clone(req.Context), Assigned: rec.Event, ClockSynced: req.ClockSynced,
	}
	var state []buffer.StateValue
	var job *Job
	var resolved []Job
	if req.Printer != "" {
		a.mu.Lock()
		n := a.nextJob
		for _, j := range a.doubt {
			if j.Scheme == name && j.Serial == serial {
				resolved = append(resolved, j)
				state = append(state, buffer.StateValue{Key: doubtKey(j.Printer, j.N)})
			}
		}
		a.mu.Unlock()
		product := cmp.Or(rec.Product, req.Product)
		v := label.Values{Serial: serial, GTIN: rec.GTIN, Product: product, Lot: rec.Lot, Expiry: rec.Expiry, Reprint: true}
		j, sv, err := a.newJob(req, lt, n, v, name, id)
		if err != nil {
			return nil, err
		}
		job, state = &j, append(state, sv...)
	}
	return &Prepared{
		Records: []buffer.Record{a.event(req.Source, id, at, data)},
		State:   state,
		Serial:  serial, Counter: rec.Counter, EventID: id, Data: data,
		Done: a.done(func() {
			a.queue(job)
			a.doubt = slices.DeleteFunc(a.doubt, func(j Job) bool {
				return slices.ContainsFunc(resolved, func(r Job) bool { return r.Printer == j.Printer && r.N == j.N })
			})
		}),
	}, nil
}

// VerifyEvent is the assigned event that reports the operator's verify
// read of serial, the serial the station just assigned (after its
// Prepare was committed): status is wire.AssignVerified,
// AssignVerifyFailed or AssignVerifyTimeout, reasons say what was read
// instead or what timed out. Assigned, the counter and the product come
// from the serial's issue record. The record's Build fails (and so the
// Write) on any other status.
func (a *Assigner) VerifyEvent(req Request, serial, status string, reasons []wire.Reason) buffer.Record {
	data := wire.AssignedData{
		Station: req.Station, Status: status, Scheme: req.Scheme, Serial: serial,
		GTIN: req.GTIN, Lot: req.Lot, Expiry: req.Expiry, Trigger: req.Trigger, Printer: req.Printer,
		Operator: req.Operator, Context: maps.Clone(req.Context), Reasons: slices.Clone(reasons), ClockSynced: req.ClockSynced,
	}
	if rec, err := a.issued(req.Scheme, serial); err == nil {
		data.Assigned, data.Counter = rec.Event, rec.Counter
		data.GTIN, data.Lot, data.Expiry = rec.GTIN, rec.Lot, rec.Expiry
	}
	rec := a.event(req.Source, wire.NewID(), a.at(req), data)
	switch status {
	case wire.AssignVerified, wire.AssignVerifyFailed, wire.AssignVerifyTimeout:
		return rec
	}
	rec.Build = func(uint64) ([]byte, error) {
		return nil, fmt.Errorf("assign: verify event of %s: status %q is not %s, %s or %s", serial, status,
			wire.AssignVerified, wire.AssignVerifyFailed, wire.AssignVerifyTimeout)
	}
	return rec
}

// check vets what every request names and returns its label template.
func (a *Assigner) check(req Request) (*label.Template, error) {
	if !wire.ValidID(req.Station) {
		return nil, badArgs("assign: station: %q is not an id (1 to 64 of [A-Za-z0-9._-])", req.Station)
	}
	if req.Printer != "" && a.printers[req.Printer] == nil {
		return nil, badArgs("assign: printer: %q is not a printer of this gateway", req.Printer)
	}
	if req.Label != nil {
		return req.Label, nil
	}
	return a.label, nil
}

func (a *Assigner) at(req Request) time.Time {
	if req.Time.IsZero() {
		return a.o.Now()
	}
	return req.Time
}

// issued reads a serial's issue record; the error wraps fs.ErrNotExist
// for a serial never issued.
func (a *Assigner) issued(scheme, serial string) (issued, error) {
	var rec issued
	b, err := a.o.Store.LoadState(issuedKey(scheme, serial))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("assign: %s: %w", issuedKey(scheme, serial), err)
	}
	return rec, nil
}

// event is the record of an assigned event.
func (a *Assigner) event(source, id string, at time.Time, data wire.AssignedData) buffer.Record {
	data.Context = maps.Clone(data.Context) // not shared with Prepared.Data
	return buffer.Record{Stream: wire.EventStream(data.Station), Build: func(seq uint64) ([]byte, error) {
		d := data
		d.Seq, d.Epoch = seq, a.o.Store.Epoch()
		return wire.Event{ID: id, Source: source, Type: wire.AssignedType, Time: at, Data: &d}.Encode()
	}}
}

// newJob renders the label of job n for req.Printer and returns it with
// the state that stores it and advances the job counter.
func (a *Assigner) newJob(req Request, lt *label.Template, n uint64, v label.Values, scheme, event string) (Job, []buffer.StateValue, error) {
	if lt == a.label && v.GTIN == "" {
		lt = a.plain // no GTIN, no GS1 element string: the serial alone
	}
	zpl, err := lt.Render(v)
	if err != nil {
		return Job{}, nil, badArgs("assign: label of %s for printer %s: %v", v.Serial, req.Printer, err)
	}
	j := Job{
		N: n, Printer: req.Printer, Station: req.Station, Scheme: scheme, Serial: v.Serial,
		Event: event, Reprint: v.Reprint, ZPL: zpl, Created: a.o.Now(),
	}
	state, err := jsonState(keyed{jobKey(req.Printer, n), j})
	if err != nil {
		return Job{}, nil, err
	}
	return j, append(state, buffer.StateValue{Key: nextJobKey, Value: strconv.AppendUint(nil, n+1, 10)}), nil
}

// keyed is a state value before it is encoded.
type keyed struct {
	key   string
	value any
}

// jsonState encodes each value as JSON.
func jsonState(kvs ...keyed) ([]buffer.StateValue, error) {
	out := make([]buffer.StateValue, 0, len(kvs))
	for _, kv := range kvs {
		b, err := json.Marshal(kv.value)
		if err != nil {
			return nil, fmt.Errorf("assign: encode %s: %w", kv.key, err)
		}
		out = append(out, buffer.StateValue{Key: kv.key, Value: b})
	}
	return out, nil
}

// done makes a Prepared's Done: apply runs under a.mu on a commit, and
// the assign lock is released either way, once.
func (a *Assigner) done(apply func()) func(bool) {
	var once sync.Once
	return func(committed bool) {
		once.Do(func() {
			if committed {
				a.mu.Lock()
				apply()
				a.mu.Unlock()
			}
			a.assign.Unlock()
		})
	}
}
