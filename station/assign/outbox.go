package assign

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/station/wire"
)

// Job is one label for one printer, stored until it is printed.
type Job struct {
	// N numbers the gateway's jobs: a printer takes its own in N order.
	N       uint64 `json:"n"`
	Printer string `json:"printer"`
	Station string `json:"station"`
	Scheme  string `json:"scheme"`
	Serial  string `json:"serial"`
	// Event is the id of the assigned event (status assigned or
	// reprint) the label belongs to.
	Event   string    `json:"event"`
	Reprint bool      `json:"reprint,omitempty"`
	ZPL     []byte    `json:"zpl"`
	Created time.Time `json:"created"`
	// Sending is set, durably, before the job is sent: a job found with
	// it at start may have printed.
	Sending bool `json:"sending,omitempty"`
}

type printer struct {
	id     string
	dev    Printer
	wake   chan struct{} // a job was queued
	queue  []Job         // in N order
	ready  bool
	reason string
}

// loadOutbox reads the jobs and moves those found marked sending to the
// in-doubt list.
func (a *Assigner) loadOutbox() error {
	values, err := a.o.Store.ListState(printPrefix)
	if err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	var cut []Job
	orphans := map[string]int{}
	for _, v := range values {
		if v.Key == nextJobKey {
			n, err := strconv.ParseUint(string(v.Value), 10, 64)
			if err != nil {
				return fmt.Errorf("assign: %s: %w", nextJobKey, err)
			}
			a.nextJob = max(a.nextJob, n)
			continue
		}
		var j Job
		if err := json.Unmarshal(v.Value, &j); err != nil {
			return fmt.Errorf("assign: print job %s: %w", v.Key, err)
		}
		inDoubt := strings.HasPrefix(v.Key, doubtPrefix)
		want := jobKey(j.Printer, j.N)
		if inDoubt {
			want = doubtKey(j.Printer, j.N)
		}
		if v.Key != want {
			return fmt.Errorf("assign: print job %s holds job %d of printer %q", v.Key, j.N, j.Printer)
		}
		a.nextJob = max(a.nextJob, j.N+1)
		p := a.printers[j.Printer]
		switch {
		case inDoubt:
			a.doubt = append(a.doubt, j)
		case j.Sending:
			cut = append(cut, j)
		case p != nil:
			p.queue = append(p.queue, j)
		default:
			orphans[j.Printer]++
		}
	}
	for id, n := range orphans {
		a.o.Log.Warn("print jobs wait for a printer that is not configured; they print once it is again", "printer", id, "jobs", n)
	}
	for _, p := range a.printers {
		a.m.jobs.WithLabelValues(p.id, "printed")
		a.m.jobs.WithLabelValues(p.id, "in_doubt")
		a.m.ready.WithLabelValues(p.id).Set(0)
		a.m.waiting.WithLabelValues(p.id).Set(float64(len(p.queue)))
	}
	if len(cut) == 0 {
		return nil
	}
	if err := a.toDoubt(context.Background(), cut...); err != nil {
		return fmt.Errorf("assign: move the jobs cut off by a stop to print/doubt: %w", err)
	}
	for _, j := range cut {
		a.hook(j.Printer, j.N, "in_doubt")
	}
	return nil
}

// toDoubt moves jobs that may have printed to the in-doubt list: in the
// store (one Write), and in memory even when the Write fails, since such
// a job must not be sent again either way (left marked, it is found in
// doubt at the next start).
func (a *Assigner) toDoubt(ctx context.Context, jobs ...Job) error {
	var w buffer.Write
	for _, j := range jobs {
		b, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode print job %d: %w", j.N, err)
		}
		w.State = append(w.State, buffer.StateValue{Key: jobKey(j.Printer, j.N)}, buffer.StateValue{Key: doubtKey(j.Printer, j.N), Value: b})
	}
	_, err := a.o.Store.SubmitWrite(ctx, w)()
	a.mu.Lock()
	a.doubt = append(a.doubt, jobs...)
	for _, j := range jobs {
		a.m.jobs.WithLabelValues(j.Printer, "in_doubt").Inc()
	}
	a.mu.Unlock()
	for _, j := range jobs {
		a.o.Log.Error("print job in doubt: its send was cut off, the label may have printed; it is not sent again, re-print the serial if the label is missing",
			"printer", j.Printer, "job", j.N, "serial", j.Serial, "scheme", j.Scheme, "station", j.Station, "event", j.Event, "reprint", j.Reprint)
	}
	return err
}

// InDoubt returns the jobs that may have printed and are not sent again,
// by printer and number.
func (a *Assigner) InDoubt() []Job {
	a.mu.Lock()
	out := slices.Clone(a.doubt)
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y Job) int {
		return cmp.Or(cmp.Compare(x.Printer, y.Printer), cmp.Compare(x.N, y.N))
	})
	return out
}

// Printers returns the configured printers, by id, as /status and the
// heartbeat show them. Ready and Reason are what the last status check or
// send found: Reason is why the printer is not sent to (zpl.Status.Reason,
// "unreachable", "no_status" for a printer that stopped answering ~HS),
// "unknown" before the first check; a printer without status (USB, or
// one that never answered ~HS) reads ready. Waiting jobs are stored and
// not yet printed; InDoubt ones may have printed and are not sent again.
func (a *Assigner) Printers() []wire.PrinterStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]wire.PrinterStatus, 0, len(a.ids))
	for _, id := range a.ids {
		p := a.printers[id]
		st := wire.PrinterStatus{ID: id, Ready: p.ready, Reason: p.reason, Waiting: len(p.queue)}
		for _, j := range a.doubt {
			if j.Printer == id {
				st.InDoubt++
			}
		}
		out = append(out, st)
	}
	return out
}

// queue hands a committed job to its printer's worker. The caller holds
// a.mu.
func (a *Assigner) queue(j *Job) {
	if j == nil {
		return
	}
	p := a.printers[j.Printer]
	p.queue = append(p.queue, *j)
	a.nextJob = j.N + 1
	a.m.waiting.WithLabelValues(p.id).Set(float64(len(p.queue)))
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (a *Assigner) hook(printer string, n uint64, result string) {
	if a.o.OnJob != nil {
		a.o.OnJob(printer, n, result)
	}
}

// Run runs one worker per printer until ctx ends, and returns nil then.
// A send in progress is finished first (see Printer), so Run must end
// before the store is closed. Call it once.
func (a *Assigner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, id := range a.ids {
		w := &worker{a: a, p: a.printers[id], ask: true, log: a.o.Log.With("printer", id)}
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	return nil
}

// worker brings one printer its jobs.
type worker struct {
	a   *Assigner
	p   *printer
	log *slog.Logger
	// ask: the printer is asked ~HS before each job; answered: it did
	// answer once, so a silence means it is not ready.
	ask, answered bool
}

func (w *worker) run(ctx context.Context) {
	w.check(ctx) // the status page knows the printer before its first job
	for ctx.Err() == nil {
		w.a.mu.Lock()
		var j Job
		ok := len(w.p.queue) > 0
		if ok {
			j = w.p.queue[0]
		}
		w.a.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-w.p.wake:
			}
			continue
		}
		result := w.check(ctx)
		if result == "" {
			result = w.send(ctx, j)
		}
		if result == "canceled" {
			return
		}
		w.a.hook(w.p.id, j.N, result)
		if result == "printed" {
			continue
		}
		t := time.NewTimer(w.a.o.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// check asks the printer's status where it has one and returns why it
// must not be sent to now, or "".
func (w *worker) check(ctx context.Context) string {
	if !w.ask {
		return ""
	}
	_, err := w.p.dev.Status(ctx)
	if ctx.Err() != nil {
		return "canceled"
	}
	switch {
	case err == nil:
		w.answered = true
		w.set(true, "", nil)
		return ""
	case errors.Is(err, errors.ErrUnsupported):
		w.ask = false
		w.set(true, "", nil)
		return ""
	case errors.Is(err, zpl.ErrNotReady):
		w.answered = true
	case errors.Is(err, zpl.ErrUnreachable):
	case errors.Is(err, zpl.ErrNoReply) && w.answered:
		// Newer Zebra firmware falls silent while media is out or the
		// head open.
	default:
		// Silent from the start, or an answer that is no host status:
		// it does not speak ~HS, and asking would cost every job the
		// reply timeout.
		w.ask = false
		w.log.Warn("printer does not answer ~HS; its jobs are sent without a status check", "err", err)
		w.set(true, "", nil)
		return ""
	}
	reason := zpl.ErrorReason(err)
	w.set(false, reason, err)
	return reason
}

// set records the printer's state, logging and counting a change.
func (w *worker) set(ready bool, reason string, err error) {
	a, p := w.a, w.p
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.ready == ready && p.reason == reason {
		return
	}
	if !p.ready && p.reason != "unknown" {
		a.m.notReady.DeleteLabelValues(p.id, p.reason)
	}
	p.ready, p.reason = ready, reason
	a.m.ready.WithLabelValues(p.id).Set(b2f(ready))
	if ready {
		w.log.Info("printer ready", "waiting", len(p.queue))
		return
	}
	a.m.notReady.WithLabelValues(p.id, reason).Set(1)
	w.log.Warn("printer not ready; its jobs wait", "reason", reason, "waiting", len(p.queue), "err", err)
}

// send marks j sending, sends it and settles it: printed (deleted),
// not sent (unmarked, tried again) or in doubt. It returns the result
// for OnJob.
func (w *worker) send(ctx context.Context, j Job) string {
	a := w.a
	marked := j
	marked.Sending = true
	if err := w.put(ctx, marked); err != nil {
		if ctx.Err() != nil {
			return "canceled"
		}
		w.log.Error("print job not sent: marking it sending failed", "job", j.N, "serial", j.Serial, "err", err)
		return "error"
	}
	// From the mark on, the job is seen through even if ctx ends: a stop
	// must not cut a label off half-sent.
	bg := context.WithoutCancel(ctx)
	err := w.p.dev.Send(bg, j.ZPL)
	switch {
	case err == nil:
		if _, err := a.o.Store.SubmitWrite(bg, buffer.Write{State: []buffer.StateValue{{Key: jobKey(j.Printer, j.N)}}})(); err != nil {
			w.log.Error("label printed, but its job could not be deleted: after a restart it is reported in doubt", "job", j.N, "serial", j.Serial, "err", err)
		}
		w.pop(j)
		w.set(true, "", nil)
		a.m.jobs.WithLabelValues(j.Printer, "printed").Inc()
		w.log.Debug("label printed", "job", j.N, "serial", j.Serial, "reprint", j.Reprint)
		return "printed"
	case notSent(err):
		if err := w.put(bg, j); err != nil {
			w.log.Warn("print job not sent and could not be unmarked: should the gateway stop before it is sent, it is reported in doubt", "job", j.N, "err", err)
		}
		w.set(false, "unreachable", err)
		return "unreachable"
	}
	w.pop(j)
	w.set(false, zpl.ErrorReason(err), err)
	if err := a.toDoubt(bg, marked); err != nil {
		w.log.Error("print job in doubt could not be moved to print/doubt; it is found in doubt at the next start", "job", j.N, "err", err)
	}
	return "in_doubt"
}

// put stores j under its job key.
func (w *worker) put(ctx context.Context, j Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = w.a.o.Store.SubmitWrite(ctx, buffer.Write{State: []buffer.StateValue{{Key: jobKey(j.Printer, j.N), Value: b}}})()
	return err
}

// pop takes j, the head, off the printer's queue.
func (w *worker) pop(j Job) {
	a, p := w.a, w.p
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(p.queue) > 0 && p.queue[0].N == j.N {
		p.queue = p.queue[1:]
	}
	a.m.waiting.WithLabelValues(p.id).Set(float64(len(p.queue)))
}

// notSent reports whether a Send failed before any byte left: the
// connection to the printer or its device file could not be opened.
// Only such a job is sent again.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op == "dial"
	}
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "open"
}
