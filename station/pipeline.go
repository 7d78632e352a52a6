package station

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
)

// A scanner's reads go through two goroutines when they queue up. The
// reading one (the driver's, in take) decodes and judges each read and
// submits it to the store without waiting for the commit; the answering
// one (give) waits for each read's commit, in read order, and only then
// gives its feedback and indication. So several frames of one read() (a
// streaming reader's backlog, what arrived while a commit synced) share
// the next commit instead of waiting for one sync each, while every
// frame's feedback still comes after the sync that covers it. A read with
// nothing before it unanswered and nothing behind it in the same read()
// (a handheld that waits for its beep, a reader in host-acknowledge mode)
// is answered on the reading goroutine itself: no hop, no extra wake-up.
//
// The judging of a read sees the reads before it that are still being
// stored: the duplicate rules hold them (Holder), and the debouncer waits
// for a pending read of the same label.

// answerDepth bounds the reads of one scanner between take and give: a
// store that stops committing stops the reading after this many.
const answerDepth = 64

// loop is one scanner's read loop.
type loop struct {
	sc  Scanner
	log *slog.Logger // with the scanner's id
	m   loopMetrics

	mu       sync.Mutex
	arrivals []int64 // unix ns each read not yet answered arrived, oldest first
}

// loopMetrics are one scanner's series, resolved once: the hot path
// does not look up labels.
type loopMetrics struct {
	reads, repeats prometheus.Counter
}

func (s *Station) newLoop(sc Scanner) *loop {
	return &loop{sc: sc, log: s.log.With("scanner", sc.ID()), m: loopMetrics{
		reads:   s.m.reads.WithLabelValues(s.cfg.ID, sc.ID()),
		repeats: s.m.suppressed.WithLabelValues(s.cfg.ID, sc.ID(), "repeat"),
	}}
}

// oldest is when the oldest read not yet answered arrived; 0 for none.
func (l *loop) oldest() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.arrivals) == 0 {
		return 0
	}
	return l.arrivals[0]
}

// arrived notes a read taken; it reports whether it is the only one not
// yet answered.
func (l *loop) arrived(t int64) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arrivals = append(l.arrivals, t)
	return len(l.arrivals) == 1
}

func (l *loop) answered() {
	l.mu.Lock()
	l.arrivals = l.arrivals[1:]
	if len(l.arrivals) == 0 {
		l.arrivals = l.arrivals[:0:0] // let the backing array go when idle
	}
	l.mu.Unlock()
}

// answer is one read on its way from take to give.
type answer struct {
	r       device.Read
	scan    *Scan                  // nil: not a scan (a no-read, a discarded read, a repeat)
	pending func() (uint64, error) // waits for the commit; nil: nothing was stored
	start   time.Time
	doc     *document        // a document read (scan is nil)
	claim   *claim           // the debouncer's, resolved when answered
	repeats *debouncer       // whose claim it is
	release func(bool) error // the duplicate rules' hold
	sig     device.Signal    // a repeat's or a no-read's signal
	repeat  bool
	err     error // a discarded read's
}

// readLoop is a scanner's run. Reads are answered under the station's
// context, not the scanner's: a scanner that a reload removes stops after
// the reads it has taken are stored and answered.
func (s *Station) readLoop(stationCtx context.Context, l *loop) func(context.Context) error {
	return func(ctx context.Context) error {
		answers := make(chan *answer, answerDepth)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for a := range answers {
				s.give(l, a)
				l.answered()
			}
		}()
		err := l.sc.Run(ctx, func(_ context.Context, r device.Read) {
			first := l.arrived(s.now().UnixNano())
			a := s.take(stationCtx, l, r)
			if first && !r.More {
				// Nothing before it is unanswered and nothing behind it
				// is waiting: answer it here, as a scanner that waits for
				// each answer does, without a hop to the answerer.
				s.give(l, a)
				l.answered()
				return
			}
			answers <- a
		})
		close(answers)
		<-done
		return err
	}
}

// take judges one read and submits what is to be stored. It runs on the
// scanner's reading goroutine, so a scanner's events are stored in the
// order they were read.
func (s *Station) take(ctx context.Context, l *loop, r device.Read) *answer {
	set := s.settings.Load()
	id := l.sc.ID()
	l.m.reads.Inc()
	a := &answer{r: r}
	switch {
	case r.Err != nil:
		s.rates.add(id, false)
		a.err = r.Err
		return a
	case r.NoRead:
		s.rates.add(id, false)
		a.sig = device.Missed
		if set.cfg.NoReadEvents {
			a.pending = s.submitNoRead(ctx, id, r)
		}
		return a
	}
	now := s.now()
	sig, repeat, claim := set.repeats.check(ctx, id, r, now)
	if repeat {
		// The same label again within the window (a tunnel reads it
		// several times): not a new scan, but answered like the first,
		// after its commit, so that a reader waiting for its ACK does not
		// hang. It does not count in the read rate: one label, one read.
		a.repeat, a.sig = true, sig
		return a
	}
	a.claim, a.repeats = claim, set.repeats
	s.rates.add(id, true)
	scan := s.decode(id, r)
	if scan.Verdict == Rejected && scan.Reasons[0].Code == "non_printable" {
		// Often a line problem (wrong terminator, a port in the wrong
		// mode) rather than a label: say so, but not for every read.
		if n, ok := s.garbled.allow(now); ok {
			l.log.Info("scan rejected: it holds a control character (check the scanner's terminator and the line)",
				"reason", scan.Reasons[0].Message, "suppressed_since_last", n)
		}
	}
	validated := scan.Verdict == ""
	if validated {
		set.valid.Validate(scan)
	}
	a.scan, a.start = scan, time.Now()
	s.record(ctx, a, set, validated)
	return a
}

// submitNoRead submits a no-read event.
func (s *Station) submitNoRead(ctx context.Context, scanner string, r device.Read) func() (uint64, error) {
	mode, c := s.State()
	return s.store.Submit(ctx, wire.EventStream(s.cfg.ID), func(seq uint64) ([]byte, error) {
		return wire.Event{ID: wire.NewID(), Source: s.source, Type: wire.NoReadType, Time: s.now(), Data: &wire.NoReadData{
			Seq: seq, Epoch: s.store.Epoch(), Station: s.cfg.ID, Mode: mode, Context: c,
			Scanner: scanner, Raw: string(r.Data), ClockSynced: s.synced(),
		}}.Encode()
	})
}

// give answers one read once what it submitted is durable (or refused):
// feedback, indication, metrics.
func (s *Station) give(l *loop, a *answer) {
	id := l.sc.ID()
	switch {
	case a.err != nil:
		reason := "read_error"
		if errors.Is(a.err, device.ErrOversize) {
			reason = "oversize"
		}
		l.log.Warn("read discarded", "reason", reason, "err", a.err)
		s.m.discarded.WithLabelValues(s.cfg.ID, reason).Inc()
		s.feedback(l, device.Bad)
		s.indicate(id, "", 0, nil, Discarded, []Reason{{Code: reason, Message: a.err.Error()}})
	case a.repeat:
		l.m.repeats.Inc()
		s.feedback(l, a.sig)
		s.indicate(id, "", 0, a.r.Data, Suppressed, []Reason{{Code: "repeat", Message: "the same read again within the debounce window"}})
	case a.doc != nil:
		sig, stored := s.documented(l, a)
		a.repeats.resolve(a.claim, sig, stored)
	case a.scan == nil: // a no-read
		sig := a.sig
		if a.pending != nil {
			if _, err := a.pending(); err != nil {
				// Bad, so that a reader in host-acknowledge mode sends it again.
				l.log.Error("no-read not recorded", "err", err)
				s.m.noreadEvents.WithLabelValues(s.cfg.ID, "refused").Inc()
				sig = device.Bad
			} else {
				s.m.noreadEvents.WithLabelValues(s.cfg.ID, "stored").Inc()
			}
		}
		s.feedback(l, sig)
		s.indicate(id, "", 0, a.r.Data, NoRead, []Reason{{Code: "noread", Message: "the reader could not read the item"}})
	default:
		sig, stored := s.stored(l, a)
		// Only a stored scan is remembered: one that was refused must be
		// taken again when it is rescanned.
		a.repeats.resolve(a.claim, sig, stored)
	}
}

// stored answers a scan once its commit returned; it reports the signal
// given and whether the scan was stored.
func (s *Station) stored(l *loop, a *answer) (device.Signal, bool) {
	scan := a.scan
	seq, err := a.pending()
	s.m.storeSeconds.Observe(time.Since(a.start).Seconds())
	if a.release != nil {
		if rerr := a.release(err == nil); rerr != nil {
			l.log.Warn("scan not recorded for duplicate rules", "id", scan.ID, "err", rerr)
		}
	}
	if err != nil {
		// Not stored: the operator must rescan, so never a good signal.
		l.log.Error("scan refused: not stored", "id", scan.ID, "err", err)
		s.m.refused.WithLabelValues(s.cfg.ID).Inc()
		s.feedback(l, device.Bad)
		s.indicate(l.sc.ID(), scan.ID, 0, scan.Data, Refused, []Reason{{Code: "not_stored", Message: err.Error()}})
		return device.Bad, false
	}
	s.m.scans.WithLabelValues(s.cfg.ID, scan.Verdict).Inc()
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("scan stored", "seq", seq, "id", scan.ID, "verdict", scan.Verdict)
	}
	sig := device.Bad
	switch scan.Verdict {
	case Accepted:
		sig = device.Good
	case Warning:
		sig = device.Warn
	}
	s.feedback(l, sig)
	s.indicate(l.sc.ID(), scan.ID, seq, scan.Data, scan.Verdict, scan.Reasons)
	return sig, true
}

// documented answers a document read once its context event is stored.
func (s *Station) documented(l *loop, a *answer) (device.Signal, bool) {
	seq, err := a.pending()
	if err != nil {
		l.log.Error("document read refused: not stored", "kind", a.doc.Kind, "err", err)
		s.m.refused.WithLabelValues(s.cfg.ID).Inc()
		s.feedback(l, device.Bad)
		s.indicate(l.sc.ID(), "", 0, a.r.Data, Refused, []Reason{{Code: "not_stored", Message: err.Error()}})
		return device.Bad, false
	}
	s.feedback(l, a.doc.sig)
	verdict := Accepted
	switch a.doc.sig {
	case device.Warn:
		verdict = Warning
	case device.Bad:
		verdict = Rejected
	}
	reasons := []Reason{{Code: "document." + a.doc.Kind, Message: strings.TrimSpace(a.doc.Kind + " " + a.doc.Value)}}
	for _, f := range a.doc.findings {
		reasons = append(reasons, f.Reason)
	}
	s.indicate(l.sc.ID(), "", seq, a.r.Data, verdict, reasons)
	return a.doc.sig, true
}
