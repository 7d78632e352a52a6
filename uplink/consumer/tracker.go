package consumer

import (
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// Bounds of what the tracker keeps (package comment, "Restarts and
// bounded memory").
const (
	// maxEpochs is how many epochs of one gateway are tracked: the
	// current one, and older ones whose salvaged events may still come.
	maxEpochs = 4
	// maxGateways is far above a site's fleet; only a flood of made-up
	// gateway ids reaches it.
	maxGateways = 50_000
	// maxSpans bounds the ranges of one epoch; each gap splits one range
	// in two, so it bounds the gaps on record too.
	maxSpans = 1024
)

// tracker is the consumer's bookkeeping, without a broker: which seqs of
// each gateway and epoch arrived, what is missing, and what was asked for.
// Its methods take the time, so tests drive it with a clock of their own.
// It is not safe for concurrent use: the Consumer holds its lock around
// every call, callbacks included.
type tracker struct {
	resendAfter, resendMax time.Duration
	canAsk                 bool // there is a key to sign resend requests
	maxSpans, maxGateways  int
	onGap                  func(Gap)
	onEpoch                func(Epoch)
	log                    *slog.Logger

	gateways map[gwKey]*gateway
	asking   map[*stream]bool // streams with gaps that may be asked for
	pending  map[string]*gap  // resend command id → the gap it asks for
}

func newTracker(resendAfter, resendMax time.Duration, canAsk bool, onGap func(Gap), onEpoch func(Epoch), log *slog.Logger) *tracker {
	return &tracker{
		resendAfter: resendAfter, resendMax: resendMax, canAsk: canAsk,
		maxSpans: maxSpans, maxGateways: maxGateways,
		onGap: onGap, onEpoch: onEpoch, log: log,
		gateways: map[gwKey]*gateway{},
		asking:   map[*stream]bool{},
		pending:  map[string]*gap{},
	}
}

type gwKey struct{ site, gateway string }

type gateway struct {
	key     gwKey
	current string    // the epoch of its last status; "" before one
	streams []*stream // one per epoch, at most maxEpochs
	last    time.Time // last heard from
}

// stream is one epoch of one gateway.
type stream struct {
	gw    *gateway
	epoch string
	// fresh says the epoch was seen to begin, so its first seq is 1.
	fresh bool
	// got holds the seqs that arrived: sorted, disjoint, never touching
	// (adjacent ranges are merged), so a gap-free stream is one span.
	got []span
	// gaps are the holes reported, sorted by from and disjoint. They
	// only ever open above every seq that arrived, so each hole in got
	// above the first seq belongs to exactly one gap.
	gaps []*gap
	last time.Time
}

type span struct{ lo, hi uint64 }

type gap struct {
	st       *stream
	from, to uint64 // as reported when it opened
	missing  uint64 // how many of from..to have not arrived
	opened   time.Time
	asks     int
	next     time.Time // when to ask (again)
	answered bool      // the gateway replied that it queued them again
	lost     string    // why it is no longer asked for; "" while it is
	pending  string    // id of the last resend command for it
}

// ask is a resend command to send.
type ask struct {
	id                   string
	site, gateway, epoch string
	from, to             uint64
}

// event records the arrival of ev's seq and reports whether it is the
// first (false: a duplicate, to be dropped).
func (t *tracker) event(ev *Event, now time.Time) bool {
	gw := t.gateway(ev.Site, ev.Gateway, now)
	st := t.stream(gw, ev.Epoch, false, now)
	st.last = now
	return t.add(st, ev.Seq, now)
}

// status records a gateway's status: its epoch, and whether it just came
// online (a live birth, not the retained copy a subscribe brings).
func (t *tracker) status(site, gwID, epoch, state string, retained bool, now time.Time) {
	gw := t.gateway(site, gwID, now)
	if epoch != "" && len(epoch) <= maxField {
		t.stream(gw, epoch, true, now)
		gw.current = epoch
	}
	if state != wire.Online || retained {
		return
	}
	// Commands sent while it was offline were lost: ask again now rather
	// than at the end of a backoff grown during the outage.
	for _, st := range gw.streams {
		for _, g := range st.gaps {
			if g.asks > 0 && !g.answered && g.lost == "" && g.next.After(now) {
				g.next = now
			}
		}
	}
}

// gateway returns the gateway's record, making it if need be.
func (t *tracker) gateway(site, id string, now time.Time) *gateway {
	k := gwKey{site, id}
	gw := t.gateways[k]
	if gw == nil {
		if len(t.gateways) >= t.maxGateways {
			t.forgetGateway(now)
		}
		gw = &gateway{key: k}
		t.gateways[k] = gw
	}
	gw.last = now
	return gw
}

// stream returns the gateway's stream of epoch, making it if need be.
// A gateway's new epoch counts from seq 1 if the gateway was known
// before, unless an event brings it while the gateway's status names
// another: then it is an older epoch's salvaged events, and, as for a
// gateway seen for the first time, counting starts where they do.
func (t *tracker) stream(gw *gateway, epoch string, fromStatus bool, now time.Time) *stream {
	for _, st := range gw.streams {
		if st.epoch == epoch {
			return st
		}
	}
	known := gw.current != "" || len(gw.streams) > 0
	fresh := known && (fromStatus || gw.current == "")
	if len(gw.streams) >= maxEpochs {
		oldest := 0
		for i, st := range gw.streams {
			if st.last.Before(gw.streams[oldest].last) {
				oldest = i
			}
		}
		t.forget(gw.streams[oldest], "too many epochs of this gateway tracked", now)
		gw.streams = append(gw.streams[:oldest], gw.streams[oldest+1:]...)
	}
	st := &stream{gw: gw, epoch: epoch, fresh: fresh, last: now}
	gw.streams = append(gw.streams, st)
	if fresh {
		prev := gw.current
		if prev == "" && len(gw.streams) > 1 {
			prev = gw.streams[len(gw.streams)-2].epoch
		}
		t.onEpoch(Epoch{Site: gw.key.site, Gateway: gw.key.gateway, Epoch: epoch, Previous: prev})
	}
	return st
}

// add records seq's arrival in st.
func (t *tracker) add(st *stream, seq uint64, now time.Time) bool {
	if len(st.got) == 0 {
		st.got = []span{{seq, seq}}
		if st.fresh && seq > 1 {
			t.open(st, 1, seq-1, now)
		}
		return true
	}
	i := sort.Search(len(st.got), func(i int) bool { return st.got[i].hi >= seq })
	if i < len(st.got) && st.got[i].lo <= seq {
		return false
	}
	top := st.got[len(st.got)-1].hi
	st.got = addRange(st.got, seq, seq)
	switch {
	case seq > top+1:
		t.open(st, top+1, seq-1, now)
	case seq < top:
		t.fill(st, seq, now)
	}
	for len(st.got) > t.maxSpans {
		t.giveUpOldest(st, now)
	}
	return true
}

// addRange adds lo..hi (lo >= 1) to s, merging what it overlaps or
// touches. Written with lo-1 rather than hi+1, which would overflow at
// the largest seq.
func addRange(s []span, lo, hi uint64) []span {
	i := sort.Search(len(s), func(k int) bool { return s[k].hi >= lo-1 })
	j := i
	for j < len(s) && s[j].lo-1 <= hi {
		j++
	}
	if i == j {
		s = append(s, span{})
		copy(s[i+1:], s[i:])
		s[i] = span{lo, hi}
		return s
	}
	s[i] = span{min(lo, s[i].lo), max(hi, s[j-1].hi)}
	return append(s[:i+1], s[j:]...)
}

// open reports a new gap from..to, above every seq that arrived.
func (t *tracker) open(st *stream, from, to uint64, now time.Time) {
	g := &gap{st: st, from: from, to: to, missing: to - from + 1, opened: now, next: now.Add(t.resendAfter)}
	st.gaps = append(st.gaps, g)
	if t.canAsk {
		t.asking[st] = true
	}
	t.onGap(g.report(GapOpen))
}

// fill counts seq, which arrived in a hole, against its gap.
func (t *tracker) fill(st *stream, seq uint64, now time.Time) {
	j := sort.Search(len(st.gaps), func(j int) bool { return st.gaps[j].to >= seq })
	if j == len(st.gaps) || st.gaps[j].from > seq {
		return // below where counting started: no gap was reported
	}
	g := st.gaps[j]
	if g.missing--; g.missing == 0 {
		t.remove(g)
		t.onGap(g.report(GapClosed))
	}
}

// giveUpOldest makes room in st.got by taking its lowest hole as settled:
// the gap it belongs to is reported lost and forgotten (an event of it
// arriving later is then taken for a duplicate).
func (t *tracker) giveUpOldest(st *stream, now time.Time) {
	holeTop := st.got[1].lo - 1
	if len(st.gaps) > 0 && st.gaps[0].from <= holeTop {
		g := st.gaps[0]
		st.got = addRange(st.got, g.from, g.to)
		t.remove(g)
		if g.lost == "" {
			g.lost = fmt.Sprintf("more than %d gaps on record for this epoch; the oldest is given up", t.maxSpans)
			t.onGap(g.report(GapLost))
		}
		return
	}
	st.got = addRange(st.got, st.got[0].lo, st.got[1].hi)
}

// remove takes g off the record.
func (t *tracker) remove(g *gap) {
	st := g.st
	for i, x := range st.gaps {
		if x == g {
			st.gaps = append(st.gaps[:i], st.gaps[i+1:]...)
			break
		}
	}
	if g.pending != "" {
		delete(t.pending, g.pending)
		g.pending = ""
	}
	t.unask(st)
}

// unask drops st from the streams due() looks at once nothing in it
// can be asked for.
func (t *tracker) unask(st *stream) {
	for _, g := range st.gaps {
		if g.lost == "" {
			return
		}
	}
	delete(t.asking, st)
}

// lose stops asking for g; it stays on record, so that its seqs are still
// delivered if they arrive after all (and it closes then).
func (t *tracker) lose(g *gap, reason string) {
	if g.lost != "" {
		return
	}
	g.lost = reason
	if g.pending != "" {
		delete(t.pending, g.pending)
		g.pending = ""
	}
	t.unask(g.st)
	t.onGap(g.report(GapLost))
}

// forget drops a whole stream; its open gaps are reported lost.
func (t *tracker) forget(st *stream, reason string, now time.Time) {
	for _, g := range append([]*gap(nil), st.gaps...) {
		t.lose(g, "forgotten: "+reason)
		t.remove(g)
	}
	delete(t.asking, st)
}

// forgetGateway drops the gateway heard from least recently.
func (t *tracker) forgetGateway(now time.Time) {
	var oldest *gateway
	for _, gw := range t.gateways {
		if oldest == nil || gw.last.Before(oldest.last) {
			oldest = gw
		}
	}
	for _, st := range oldest.streams {
		t.forget(st, fmt.Sprintf("more than %d gateways tracked", t.maxGateways), now)
	}
	delete(t.gateways, oldest.key)
}

// due returns the resend requests to send now, and counts them as asked.
func (t *tracker) due(now time.Time) []ask {
	var asks []ask
	for st := range t.asking {
		for _, g := range st.gaps {
			if g.lost != "" || g.next.After(now) {
				continue
			}
			from, to := st.missingBounds(g)
			a := ask{
				id:   "resend-" + wire.NewID(),
				site: st.gw.key.site, gateway: st.gw.key.gateway, epoch: st.epoch,
				from: from, to: to,
			}
			if g.pending != "" {
				delete(t.pending, g.pending) // only the latest answer counts
			}
			g.pending = a.id
			t.pending[a.id] = g
			g.asks++
			g.next = now.Add(t.backoff(g.asks))
			asks = append(asks, a)
			t.onGap(g.report(GapAsked))
		}
	}
	return asks
}

// backoff is the wait after the n-th request for a gap: ResendAfter
// doubled n times, at most ResendMax.
func (t *tracker) backoff(n int) time.Duration {
	d := t.resendAfter
	for range n {
		if d >= t.resendMax/2 {
			return t.resendMax
		}
		d *= 2
	}
	return min(d, t.resendMax)
}

// missingBounds narrows g to its first and last seq still missing.
func (st *stream) missingBounds(g *gap) (from, to uint64) {
	from, to = g.from, g.to
	if i := sort.Search(len(st.got), func(i int) bool { return st.got[i].hi >= from }); i < len(st.got) && st.got[i].lo <= from {
		from = st.got[i].hi + 1
	}
	if i := sort.Search(len(st.got), func(i int) bool { return st.got[i].hi >= to }); i < len(st.got) && st.got[i].lo <= to {
		to = st.got[i].lo - 1
	}
	return from, to
}

// reply acts on a gateway's answer to a resend request.
func (t *tracker) reply(r reply, now time.Time) {
	g := t.pending[r.id]
	if g == nil {
		return // not ours, or superseded by a later request
	}
	delete(t.pending, r.id)
	g.pending = ""
	gw := g.st.gw.key
	switch {
	case r.ok && r.requeued == 0:
		t.lose(g, "the gateway has none of them to send again (resend requeued 0: not in its audit window)")
	case r.ok:
		// They are queued behind the gateway's backlog; asking sooner
		// would only queue more copies.
		g.answered = true
		g.next = later(g.next, now.Add(t.resendMax))
	case r.code == wire.CodeNoAuditWindow || r.code == wire.CodeUnsupported:
		t.lose(g, fmt.Sprintf("the gateway cannot send them again (%s: %s)", r.code, r.message))
	default:
		t.log.Warn("gateway refused a resend request; asking again later",
			"site", gw.site, "gateway", gw.gateway, "epoch", g.st.epoch, "from", g.from, "to", g.to,
			"code", r.code, "message", r.message)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// report describes g in the given state.
func (g *gap) report(s GapState) Gap {
	return Gap{
		Site: g.st.gw.key.site, Gateway: g.st.gw.key.gateway, Epoch: g.st.epoch,
		From: g.from, To: g.to, Missing: g.missing,
		State: s, Asks: g.asks, Opened: g.opened, Reason: g.lost,
	}
}

// counts returns how many gaps are open (asked for or waiting) and lost.
func (t *tracker) counts() (open, lost int) {
	for _, gw := range t.gateways {
		for _, st := range gw.streams {
			for _, g := range st.gaps {
				if g.lost == "" {
					open++
				} else {
					lost++
				}
			}
		}
	}
	return open, lost
}
