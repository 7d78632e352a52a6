package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// A station that assigns serials (Config.Assign) asks the gateway's
// assigner (package assign) for the next one when a "new serial" control
// code is read, when a product is read in mode assign, or on a command.
// The assigned event, the advanced counter and the print job are stored
// in one transaction with the read that asked, before the label prints:
// a power cut leaves a number unused, never one issued twice.
//
// With Verify, the next read at the station is the label just printed:
// it completes the assignment (verified) or gets the bad signal
// (verify_failed, with what was read); no read within VerifyTimeout is
// verify_timeout, answered with the bad signal on every scanner of the
// station. The serial awaited is kept with the station's state, so a
// reboot in between still expects it.

// AssignConfig is how a station assigns serials.
type AssignConfig struct {
	Scheme  string
	Printer string          // "" prints nothing
	Label   *label.Template // nil: the built-in label
	Verify  bool
	// VerifyTimeout bounds the wait for the verify read.
	VerifyTimeout time.Duration
}

// Product names what an assignment is for: from the trigger read, the
// station's context or a command.
type Product struct {
	GTIN   string `json:"gtin,omitempty"`
	Lot    string `json:"lot,omitempty"`
	Expiry string `json:"expiry,omitempty"` // YYMMDD
}

// ErrNoAssign reports a station that assigns no serials.
var ErrNoAssign = errors.New("this station assigns no serials (assign.scheme)")

// verifying is the serial a station awaits the verify read of.
type verifying struct {
	Serial   string    `json:"serial"`
	Scheme   string    `json:"scheme"`
	Deadline time.Time `json:"deadline"`
}

func (s *Station) verifyKey() string { return "station/" + s.cfg.ID + "/verify" }

func (s *Station) restoreVerify() {
	if s.state == nil {
		return
	}
	b, err := s.state.LoadState(s.verifyKey())
	if err != nil || len(b) == 0 {
		return
	}
	var v verifying
	if json.Unmarshal(b, &v) == nil && v.Serial != "" {
		s.verify.Store(&v)
	}
}

// request is an assigner request of this station.
func (s *Station) request(c *AssignConfig, trigger string, p Product, now time.Time) assign.Request {
	_, ctx := s.State()
	if c == nil {
		c = &AssignConfig{} // prepareAssign refuses it
	}
	return assign.Request{
		Scheme: c.Scheme, Station: s.cfg.ID, Printer: c.Printer, Label: c.Label,
		GTIN: p.GTIN, Lot: p.Lot, Expiry: p.Expiry, Operator: ctx[wire.DocOperator], Context: ctx,
		Trigger: trigger, Time: now, Source: s.source, ClockSynced: s.synced(),
	}
}

// prepareAssign reserves an assignment (or a reprint of serial, "" the
// station's last) and the state that goes with it: the serial awaited
// for verification. Errors are the request's: nothing was reserved.
func (s *Station) prepareAssign(c *AssignConfig, req assign.Request, reprint bool, serial string) (*assign.Prepared, *verifying, []buffer.StateValue, error) {
	if s.assigner == nil || c == nil {
		return nil, nil, nil, ErrNoAssign
	}
	if reprint {
		prep, err := s.assigner.PrepareReprint(req, serial)
		if err != nil {
			return nil, nil, nil, err
		}
		return prep, s.verify.Load(), prep.State, nil // a reprint leaves the verification awaited as it is
	}
	prep, err := s.assigner.Prepare(req)
	if err != nil {
		return nil, nil, nil, err
	}
	state := prep.State
	if old := s.verify.Load(); old != nil {
		// A new serial before the last one's label was verified: that
		// verification ends here, in the same write, not in silence.
		vreq := req
		vreq.Scheme = old.Scheme
		prep.Records = append([]buffer.Record{s.assigner.VerifyEvent(vreq, old.Serial, wire.AssignVerifyTimeout,
			[]wire.Reason{{Code: "verify.superseded", Message: "a new serial was assigned before the label of " + old.Serial + " was scanned"}})},
			prep.Records...)
		if !c.Verify {
			state = append(slices.Clip(state), buffer.StateValue{Key: s.verifyKey()})
		}
	}
	var v *verifying
	if c.Verify {
		v = &verifying{Serial: prep.Serial, Scheme: c.Scheme, Deadline: req.Time.Add(c.VerifyTimeout)}
		b, _ := json.Marshal(v)
		state = append(slices.Clip(state), buffer.StateValue{Key: s.verifyKey(), Value: b})
	}
	return prep, v, state, nil
}

// commitAssign stores a prepared assignment with recs and out (the
// workflow step of the read that asked, if any) in one transaction, and
// puts it in force. The caller holds lockFlow.
func (s *Station) commitAssign(ctx context.Context, prep *assign.Prepared, v *verifying, state []buffer.StateValue, recs []buffer.Record, out workflow.Outcome) (wire.AssignedData, []uint64, error) {
	seqs, err := s.commitStep(ctx, out, append(recs, prep.Records...), state...)
	prep.Done(err == nil)
	if err != nil {
		return wire.AssignedData{}, nil, err
	}
	s.verify.Store(v) // nil ends a superseded one
	// The assigned event's seq: its record is prep's last.
	d := prep.Data
	if i := numbered(recs) + numbered(prep.Records) - 1; i >= 0 && i < len(seqs) {
		d.Seq, d.Epoch = seqs[i], s.store.Epoch()
	}
	s.log.Info("serial assigned", "serial", prep.Serial, "status", d.Status, "trigger", d.Trigger, "printer", d.Printer)
	return d, seqs, nil
}

// AssignSerial assigns the station's next serial for p (a command or
// `scangw serial next`): stored before it is returned, and printed.
func (s *Station) AssignSerial(ctx context.Context, trigger string, p Product) (wire.AssignedData, error) {
	return s.assignCommand(ctx, trigger, p, false, "")
}

// Reprint prints serial again ("" the station's last): marked as a
// reprint, the counter untouched.
func (s *Station) Reprint(ctx context.Context, trigger, serial string) (wire.AssignedData, error) {
	return s.assignCommand(ctx, trigger, Product{}, true, serial)
}

func (s *Station) assignCommand(ctx context.Context, trigger string, p Product, reprint bool, serial string) (wire.AssignedData, error) {
	c := s.settings.Load().cfg.Assign
	unlock := s.lockFlow()
	defer unlock()
	prep, v, state, err := s.prepareAssign(c, s.request(c, trigger, p, s.now()), reprint, serial)
	if err != nil {
		return wire.AssignedData{}, assignError(err)
	}
	d, _, err := s.commitAssign(ctx, prep, v, state, nil, workflow.Outcome{})
	return d, err
}

// assignError is the reply error of a refused assignment: the request's
// fault (bad_args) as the assigner said, a station without a scheme, or
// a used-up scheme; anything else is the gateway's failure.
func assignError(err error) error {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, ErrNoAssign):
		return &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
	case errors.Is(err, serials.ErrExhausted):
		return &wire.Error{Code: wire.CodeFailed, Message: err.Error()}
	}
	return err
}

// refusal is the reason a read gets when the assigner refused it.
func refusal(err error) wire.Reason {
	code, msg := "serial.refused", err.Error()
	var we *wire.Error
	if errors.As(err, &we) {
		msg = we.Message
	}
	if errors.Is(err, serials.ErrExhausted) {
		code = "serial.exhausted"
	}
	return wire.Reason{Code: code, Message: msg}
}

// productOf is what an assignment is for, from a read's fields and the
// station's context (the fields win).
func productOf(fields, ctx map[string]string) Product {
	p := Product{GTIN: ctx["gtin"], Lot: ctx["lot"], Expiry: ctx["expiry"]}
	if g := fields["gtin"]; g != "" {
		p.GTIN = g
	}
	if l := fields["lot"]; l != "" {
		p.Lot = l
	}
	if e := fields["expiry"]; len(e) == len("2006-01-02") { // the validator's date
		p.Expiry = e[2:4] + e[5:7] + e[8:10]
	}
	return p
}

// verifyRead takes a read as the verification of the serial awaited.
// The caller holds lockFlow.
func (s *Station) verifyRead(ctx context.Context, a *answer, set *settings, v *verifying) {
	scan := a.scan
	status, sig := wire.AssignVerified, device.Good
	var reasons []wire.Reason
	if !matchesSerial(scan, v.Serial) {
		status, sig = wire.AssignVerifyFailed, device.Bad
		reasons = []wire.Reason{{Code: "verify.mismatch", Message: fmt.Sprintf("read %q, the label printed is %s", outcomeData(scan.Data), v.Serial)}}
	}
	a.scan, a.doc = nil, &document{Document: wire.Document{Kind: "verify", Value: v.Serial}, sig: sig}
	for _, r := range reasons {
		a.doc.findings = append(a.doc.findings, workflow.Finding{Policy: workflow.Reject, Reason: r})
	}
	a.pending = first(s.finishVerify(ctx, set, v, status, reasons))
}

// finishVerify stores a verification's event and clears the serial
// awaited. The caller holds lockFlow.
func (s *Station) finishVerify(ctx context.Context, set *settings, v *verifying, status string, reasons []wire.Reason) ([]uint64, error) {
	req := s.request(set.cfg.Assign, wire.TriggerRead, Product{}, s.now())
	req.Scheme = v.Scheme // the serial's, though a reload changed the station's
	rec := s.assigner.VerifyEvent(req, v.Serial, status, reasons)
	seqs, err := s.commitStep(ctx, workflow.Outcome{}, []buffer.Record{rec}, buffer.StateValue{Key: s.verifyKey()})
	if err == nil {
		s.verify.CompareAndSwap(v, nil)
	}
	return seqs, err
}

// matchesSerial reports whether a read is the label of serial: the
// serial itself, or a GS1 code whose (21) it is.
func matchesSerial(scan *Scan, serial string) bool {
	return string(scan.Data) == serial || scan.Fields["serial"] == serial
}

// verifyTimeout ends a verification nobody scanned in time.
func (s *Station) verifyTimeout(ctx context.Context) {
	v := s.verify.Load()
	if v == nil || s.now().Before(v.Deadline) || s.assigner == nil {
		return
	}
	reasons := []wire.Reason{{Code: "verify.timeout", Message: "no read of the label " + v.Serial + " came in time"}}
	unlock := s.lockFlow()
	if s.verify.Load() != v {
		unlock()
		return // verified meanwhile
	}
	_, err := s.finishVerify(ctx, s.settings.Load(), v, wire.AssignVerifyTimeout, reasons)
	unlock() // the feedback below may wait on a slow scanner: not under the locks
	if err != nil {
		s.log.Warn("verify time-out not recorded", "serial", v.Serial, "err", err)
		return
	}
	s.log.Warn("label not verified in time", "serial", v.Serial)
	for _, sc := range s.Scanners() {
		if err := sc.Feedback(device.Bad); err != nil {
			s.log.Warn("feedback not delivered", "signal", device.Bad.String(), "err", err)
		}
		s.indicate(sc.ID(), "", 0, nil, Rejected, reasons)
	}
}

// assignOnRead handles a read that asks for a serial: a new_serial
// document, or a product read in mode assign that the rules and the
// workflow let through (its findings are applied already). It reports
// whether it did. A request the assigner refuses (a scheme used up, a
// product the template cannot take) is answered with the bad signal and
// why, and the read stored as it is. The caller holds lockFlow.
func (s *Station) assignOnRead(ctx context.Context, a *answer, set *settings, in workflow.Input, out workflow.Outcome) bool {
	c := set.cfg.Assign
	scan := a.scan
	mode, ctxMap := s.State()
	var p Product
	switch {
	case out.Document && out.Kind == wire.DocSerial:
		a.scan, a.doc = nil, &document{Document: wire.Document{Kind: out.Kind, Value: out.Value}, sig: signalOf(out.Signal)}
		p = productOf(nil, ctxMap)
	case mode == "assign" && !out.Document && c != nil && scan.Verdict != Rejected:
		p = productOf(scan.Fields, ctxMap)
	default:
		return false
	}
	prep, v, state, err := s.prepareAssign(c, s.request(c, wire.TriggerRead, p, scan.Time), false, "")
	if err != nil {
		reason := refusal(err)
		var recs []buffer.Record
		if a.doc != nil {
			a.doc.sig = device.Bad
			a.doc.findings = append(a.doc.findings, workflow.Finding{Policy: workflow.Reject, Reason: reason})
		} else {
			// Rejected now: the workflow must not count it as it would
			// an accepted read.
			reject(scan, reason.Code, reason.Message)
			in.Read.Verdict = Rejected
			out = s.step(set, in)
			recs = s.scanRecords(scan)
		}
		a.pending = first(s.commitStep(ctx, out, recs))
		return true
	}
	var recs []buffer.Record
	if a.scan != nil {
		recs = s.scanRecords(scan)
	}
	_, seqs, err := s.commitAssign(ctx, prep, v, state, recs, out)
	a.pending = first(seqs, err)
	return true
}

// numbered is how many of recs take a seq.
func numbered(recs []buffer.Record) int {
	n := 0
	for _, r := range recs {
		if !r.Companion {
			n++
		}
	}
	return n
}
