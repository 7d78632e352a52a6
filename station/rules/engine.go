package rules

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/workflow"
)

// Seen is the gateway's index of the serials it has seen moving, which the
// duplicate policies consult. The durable one lives in the buffer; it is
// bounded by a retention, so "never seen" means "not within retention".
// MemorySeen is the in-memory one. Stations call it from their own
// goroutines, so it must be safe for concurrent use.
type Seen interface {
	// Seen returns the last movement recorded for key: the station mode
	// and the scan's time. ok is false when there is none (or the index
	// cannot say: a duplicate check must not block a scan).
	Seen(key string) (mode string, at time.Time, ok bool)
	// Mark records a movement of key.
	Mark(key, mode string, at time.Time) error
}

// Options configure an Engine.
type Options struct {
	// Keys are the Ed25519 public keys rule sets must be signed with.
	Keys []ed25519.PublicKey
	// AllowUnsigned accepts sets without checking a signature. It is only
	// allowed with no Keys: a gateway either trusts keys or trusts its
	// network, never both.
	AllowUnsigned bool
	// Site and Gateway are this gateway's ids; a set naming another is
	// refused (CodeWrongTarget). "" skips the check.
	Site, Gateway string
	// Seen is the seen-serial index for duplicate checks; nil turns the
	// duplicate policies off.
	Seen Seen
	// Location is the time zone in which a scan's date is compared with an
	// expiry date; nil means time.Local.
	Location *time.Location
	// MaxSize caps an envelope in bytes; 0 means MaxSize.
	MaxSize int
	// Now is used for a scan without a time; nil means time.Now.
	Now func() time.Time
}

// Engine judges scans against the rule sets it holds: at most one per
// scope. Loading a set swaps it in atomically; Validate never blocks and
// never sees half a change.
type Engine struct {
	trust trust
	seen  Seen
	held  held // scans judged and being stored (Hold)
	loc   *time.Location
	now   func() time.Time

	mu    sync.Mutex // serialises Load and Restore; readers never take it
	state atomic.Pointer[state]
}

// state is what Validate reads: replaced whole, never modified.
type state struct {
	site, gateway *Set
	// name is the RulesVersion scans get: "none", "site:42",
	// "site:42,gateway:7".
	name string
	// floor is the newest Issued time of the sets: a trusted lower bound
	// of the present when the clock is not.
	floor time.Time
	// documents are the sets' document patterns, the site set's first.
	documents []workflow.Pattern
	// children are the sets' requirements of children by parent product
	// (GTIN-14 or SKU), the gateway set's replacing the site's.
	children map[string]workflow.Children
	// returned is the stricter of the sets' already_returned policies:
	// one finding for a unit returned twice, whichever set asks for it.
	returned string
}

func newState(site, gateway *Set) *state {
	st := &state{site: site, gateway: gateway, returned: Allow, children: map[string]workflow.Children{}}
	var names []string
	for _, s := range []*Set{site, gateway} {
		if s == nil {
			continue
		}
		// The workflow names a product without saying GTIN or SKU: a GTIN
		// entry wins over a SKU entry spelt the same, whatever the map's order.
		for _, kind := range "kg" {
			for key, c := range s.children {
				if rune(key[0]) == kind {
					st.children[productName(key)] = c
				}
			}
		}
		names = append(names, s.Name())
		if s.Issued.After(st.floor) {
			st.floor = s.Issued
		}
		st.documents = append(st.documents[:len(st.documents):len(st.documents)], s.documents...)
		st.returned = stricter(st.returned, s.returned)
	}
	st.name = strings.Join(names, ",")
	if st.name == "" {
		st.name = "none"
	}
	return st
}

func (st *state) get(scope string) *Set {
	switch scope {
	case ScopeSite:
		return st.site
	case ScopeGateway:
		return st.gateway
	}
	return nil
}

// New makes an Engine with no rule set: until one is loaded it checks only
// GS1 and HIBC syntax.
func New(o Options) (*Engine, error) {
	if o.AllowUnsigned && len(o.Keys) > 0 {
		return nil, errors.New("rules: unsigned rule sets can only be allowed when no keys are configured")
	}
	for i, k := range o.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("rules: key %d has %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
	}
	if o.MaxSize <= 0 {
		o.MaxSize = MaxSize
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{
		trust: trust{keys: o.Keys, allowUnsigned: o.AllowUnsigned, maxSize: o.MaxSize, site: o.Site, gateway: o.Gateway},
		seen:  o.Seen,
		loc:   o.Location,
		now:   o.Now,
	}
	e.state.Store(newState(nil, nil))
	return e, nil
}

// Load checks an envelope (see Decode; the version must be newer than the
// set in use for the same scope) and swaps the set in. On any error the
// sets in use stay. Loader persists the envelope bytes once Load returned
// nil, under the set's Scope, and hands them to Restore at boot.
func (e *Engine) Load(envelope []byte) (*Set, error) { return e.load(envelope, false) }

// Restore loads a persisted envelope at boot. It runs every check Load
// runs (the configured keys may have changed since it was saved), except
// that a set of the same version as the one in use is taken again.
func (e *Engine) Restore(envelope []byte) (*Set, error) { return e.load(envelope, true) }

func (e *Engine) load(envelope []byte, restore bool) (*Set, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.state.Load()
	set, err := decode(envelope, e.trust, func(scope string) int64 {
		s := cur.get(scope)
		switch {
		case s == nil:
			return 0
		case restore:
			return s.Version - 1
		}
		return s.Version
	})
	if err != nil {
		return nil, err
	}
	if set.Scope == ScopeSite {
		e.state.Store(newState(set, cur.gateway))
	} else {
		e.state.Store(newState(cur.site, set))
	}
	return set, nil
}

// Current returns the set in use for scope, or nil.
func (e *Engine) Current(scope string) *Set { return e.state.Load().get(scope) }

// Version names the sets in use as scans carry it in rules_version:
// "none", "site:42", "gateway:7" or "site:42,gateway:7".
func (e *Engine) Version() string { return e.state.Load().name }

// Judgement is the engine's verdict on a scan.
type Judgement struct {
	Verdict string // station.Accepted, station.Warning or station.Rejected
	Reasons []station.Reason
	// Fields are what the scan carries, by name: scheme, gtin, sscc, sku,
	// lic, pcn, serial, lot, expiry (YYYY-MM-DD). Absent fields are absent.
	Fields map[string]string
	// RulesVersion names the sets that judged (Version).
	RulesVersion string
	// Key identifies the unit in the seen-serial index; "" when the scan
	// names no unit (a bare GTIN, a lot).
	Key string
}

// Validate implements station.Validator: it judges s and adds the verdict,
// the reasons and the rules version to it. A verdict already on s (from
// decoding) is only ever made worse.
func (e *Engine) Validate(s *station.Scan) {
	j := e.judge(s, true)
	s.Fields = j.Fields
	s.Reasons = append(s.Reasons, j.Reasons...)
	s.Verdict = worse(s.Verdict, j.Verdict)
	s.RulesVersion = j.RulesVersion
	s.Key = j.Key
}

// Judge judges s without changing it, and also returns its fields.
func (e *Engine) Judge(s *station.Scan) Judgement { return e.judge(s, true) }

// Record tells the seen-serial index that s moved. Call it after the scan
// was stored: a scan that failed to store is rescanned, and must not then
// be called a duplicate of itself. Rejected scans, scans that name no
// unit, and scans in a mode that moves nothing (pack, build, unpack,
// assign) are not recorded.
func (e *Engine) Record(s *station.Scan) error { return e.Hold(s)(true) }

// Hold implements station.Holder: from now until release, s counts as
// seen for the scans judged after it (the same scanner's next frame, read
// while s is being stored; another scanner's read of the same unit), and
// release(true), once s is stored, records it in the seen-serial index.
// release(false) forgets it: a scan that could not be stored is rescanned
// and must not be called a duplicate of itself.
func (e *Engine) Hold(s *station.Scan) (release func(stored bool) error) {
	if e.seen == nil || s.Verdict == station.Rejected || slices.Contains(inPlace, s.Mode) {
		return noRelease
	}
	key := s.Key // as Validate found it: classifying again costs as much as judging
	if key == "" {
		sc := classify(s.Symbology, s.Data, s.Context, e.refTime(e.state.Load(), s))
		if len(sc.syntax) > 0 {
			return noRelease
		}
		key = sc.key
	}
	if key == "" {
		return noRelease
	}
	mode, at := s.Mode, s.Time
	e.held.add(key, mode, at)
	return func(stored bool) error {
		defer e.held.remove(key)
		if !stored {
			return nil
		}
		if err := e.seen.Mark(key, mode, at); err != nil {
			return fmt.Errorf("rules: record %s: %w", key, err)
		}
		return nil
	}
}

func noRelease(bool) error { return nil }

// held are the scans being stored, by seen key: what the duplicate rules
// ask first, before the seen index.
type held struct {
	mu sync.Mutex
	m  map[string]*heldMark
}

type heldMark struct {
	mode string
	at   time.Time
	n    int // holds of the key not yet released
}

func (h *held) add(key, mode string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*heldMark{}
	}
	m := h.m[key]
	if m == nil {
		m = &heldMark{}
		h.m[key] = m
	}
	m.mode, m.at, m.n = mode, at, m.n+1
}

func (h *held) remove(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.m[key]; m != nil {
		if m.n--; m.n == 0 {
			delete(h.m, key)
		}
	}
}

// seenOrHeld is the seen index's answer for key, a held scan first.
func (e *Engine) seenOrHeld(key string) (mode string, at time.Time, ok bool) {
	e.held.mu.Lock()
	m := e.held.m[key]
	if m != nil {
		mode, at = m.mode, m.at
	}
	e.held.mu.Unlock()
	if m != nil {
		return mode, at, true
	}
	return e.seen.Seen(key)
}

// refTime is "now" for a scan: its time, or the newest rule set's issue
// time when the clock is not synchronised and says an earlier time (a Pi
// without network boots with the time it last saved).
func (e *Engine) refTime(st *state, s *station.Scan) time.Time {
	t := s.Time
	if t.IsZero() {
		t = e.now()
	}
	if !s.ClockSynced && st.floor.After(t) {
		t = st.floor
	}
	return t
}

// worse returns the worse of two verdicts.
func worse(a, b string) string {
	rank := func(v string) int {
		switch v {
		case station.Rejected:
			return 3
		case station.Warning:
			return 2
		case station.Accepted:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}
