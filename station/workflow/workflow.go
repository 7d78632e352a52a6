package workflow

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// Modes of aggregation, besides wire.Modes.
const (
	ModePack   = "pack"
	ModeBuild  = "build"
	ModeUnpack = "unpack"
)

// Policies of a finding.
const (
	Warn   = "warn"
	Reject = "reject"
)

// Signals a document read or a command is answered with.
const (
	SignalGood = "good"
	SignalWarn = "warn"
	SignalBad  = "bad"
)

// Limits on a context, as the downlink's set_context has them: it
// travels in every scan event.
const (
	maxContextKeys  = 16
	maxContextKey   = 64
	maxContextValue = 256
)

// DefaultMaxChildren caps an aggregation when Config.MaxChildren is 0.
const DefaultMaxChildren = 1000

// Errors of commands, for the caller to answer as bad arguments.
var (
	ErrBadMode         = errors.New("unknown station mode")
	ErrBadContext      = errors.New("context not accepted")
	ErrAggregationOpen = errors.New("an aggregation is open")
	ErrNothingOpen     = errors.New("no aggregation is open")
	ErrBadCommand      = errors.New("unknown workflow command")
	ErrTooFewChildren  = errors.New("the parent requires more children")
)

// Config is a station's workflow configuration.
type Config struct {
	// Station is the station's id: index keys and open marks name it.
	Station string
	// Documents are the station's then the gateway's patterns; the
	// rule sets' are tried after them. Add BuiltinPatterns to classify
	// SSCCs and GLNs by their GS1 fields.
	Documents []Pattern
	// Idle clears the context after this long without a read or
	// command; 0: never.
	Idle time.Duration
	// OverScan and Unexpected are the policies ("warn", "reject") of an
	// order's over-scans and unexpected products, by mode ("*": any
	// other mode); default warn.
	OverScan, Unexpected map[string]string
	// ChildCount closes a pack or build at this many children; 0: off.
	// A parent whose rules require a count closes at that one instead.
	ChildCount int
	// MaxChildren caps an aggregation; 0: DefaultMaxChildren.
	MaxChildren int
	// ChildProducts, when not empty, are the products (GTIN-14 or SKU)
	// a child of a pack or build may be; the parent's rules
	// (Rules.Children) must allow a child too.
	ChildProducts []string
	// DocumentSignal answers a document read: "good" (default), "warn"
	// or "bad".
	DocumentSignal string
}

// State is a station's workflow state: small (an aggregation's children
// and its parent's requirement at most), JSON-serialisable, saved by the
// caller with each Outcome.
type State struct {
	Mode    string            `json:"mode"`
	Context map[string]string `json:"context,omitempty"`
	// Touched is the last activity, for Config.Idle.
	Touched time.Time `json:"touched,omitzero"`
	// Last is the context key the last document set: what a cancel
	// code removes.
	Last  string       `json:"last,omitempty"`
	Order *Progress    `json:"order,omitempty"`
	Open  *Aggregation `json:"open,omitempty"`
}

// Progress is an order's progress at a station.
type Progress struct {
	Name        string           `json:"name"`
	Lines       []wire.OrderLine `json:"lines"`
	Over        int              `json:"over,omitempty"`
	Unexpected  int              `json:"unexpected,omitempty"`
	WrongSerial int              `json:"wrong_serial,omitempty"`
	// Complete is set once the completion event was made.
	Complete bool `json:"complete,omitempty"`
}

// Aggregation is an open pack, build or unpack.
type Aggregation struct {
	Mode     string    `json:"mode"`
	Parent   string    `json:"parent"`
	Children []string  `json:"children"`
	Opened   time.Time `json:"opened"`
	Operator string    `json:"operator,omitempty"`
	// Require is what the rules required of the parent's children when
	// it opened: a rule set loaded meanwhile does not change it.
	Require Children `json:"require,omitzero"`
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Context = maps.Clone(s.Context)
	if s.Order != nil {
		o := *s.Order
		o.Lines = slices.Clone(o.Lines)
		c.Order = &o
	}
	if s.Open != nil {
		a := *s.Open
		a.Children = slices.Clone(a.Children)
		c.Open = &a // a.Require.Products is shared: nothing modifies it

	}
	return &c
}

// Read is one read of a scanner, as validated.
type Read struct {
	Scan    string // the scan event's id
	Scanner string
	Raw     string
	// Fields are the validator's (gtin, sscc, serial, lot, expiry, sku).
	Fields map[string]string
	// Unit is the unit's key in the seen-serial index ("" when none).
	Unit string
	// Verdict is the rules' (wire.Accepted, Warning, Rejected).
	Verdict string
}

// CommandKind is what a Command does.
type CommandKind int

// Commands.
const (
	SetMode CommandKind = iota + 1
	SetContext
	CloseAggregation
	CancelAggregation
)

// Command is a downlink command to the station.
type Command struct {
	Kind    CommandKind
	Mode    string            // SetMode
	Context map[string]string // SetContext: the whole context; empty clears it
}

// Input is one thing that happened at the station: a Read, a Command, or
// neither (a tick: only the passing of time, for Config.Idle).
type Input struct {
	Time    time.Time
	Read    *Read
	Command *Command
}

// Outcome is what one Input did.
type Outcome struct {
	// Next is the new state; nil when unchanged.
	Next *State
	// Document is true when the read was a document: no scan event is
	// stored for it. Kind and Value are what it named.
	Document    bool
	Kind, Value string
	// Signal answers a document read or a command (SignalGood, ...).
	Signal string
	// Findings are added to the read's scan verdict.
	Findings []Finding
	// Contexts are context events, in order (an idle expiry may precede
	// the document's); the caller fills Seq, Epoch, Station, ClockSynced.
	Contexts []wire.ContextData
	// Order is the order event of the read, if any.
	Order *wire.OrderData
	// Aggregations are closed aggregations.
	Aggregations []wire.AggregationData
	// Writes are for the Index, in order.
	Writes []Write
	// Err is why a command was refused (ErrBadMode, ...).
	Err error
}

// Finding is a check's result on a read.
type Finding struct {
	Policy string // Warn or Reject
	Reason wire.Reason
}

// step is one Step under way: the next state and what it made.
type step struct {
	cfg    Config
	rules  Rules
	idx    Index
	st     *State
	out    Outcome
	writes map[string]int // key -> position in out.Writes
}

// Step handles in, given the station's state st (not modified) and the
// index idx (read only: Outcome.Writes are the changes).
func Step(cfg Config, rules Rules, idx Index, st *State, in Input) Outcome {
	if st == nil {
		st = &State{}
	}
	s := &step{cfg: cfg, rules: rules, idx: idx, st: st.Clone()}
	s.expire(in.Time)
	switch {
	case in.Read != nil:
		s.read(in.Time, in.Read)
	case in.Command != nil:
		s.command(in.Time, in.Command)
	}
	if (in.Read != nil || in.Command != nil) && s.out.Err == nil && cfg.Idle > 0 && len(s.st.Context) > 0 {
		s.st.Touched = in.Time
	}
	if !reflect.DeepEqual(s.st, st) {
		s.out.Next = s.st
	}
	return s.out
}

func (s *step) expire(now time.Time) {
	st := s.st
	if s.cfg.Idle <= 0 || st.Touched.IsZero() || len(st.Context) == 0 || now.Sub(st.Touched) <= s.cfg.Idle {
		return
	}
	st.Context, st.Last = nil, ""
	s.syncOrder()
	s.context(wire.CauseIdle, nil)
}

func (s *step) command(now time.Time, c *Command) {
	st := s.st
	switch c.Kind {
	case SetMode:
		if !slices.Contains(wire.Modes, c.Mode) && !aggregating(c.Mode) {
			s.refuse(fmt.Errorf("%w %q: want one of %v or %s, %s, %s", ErrBadMode, c.Mode, wire.Modes, ModePack, ModeBuild, ModeUnpack))
			return
		}
		if st.Open != nil && c.Mode != st.Mode {
			s.refuse(fmt.Errorf("%w (%s of %s): close or cancel it before a change of mode", ErrAggregationOpen, st.Open.Mode, st.Open.Parent))
			return
		}
		st.Mode = c.Mode
	case SetContext:
		if err := checkContext(c.Context); err != nil {
			s.refuse(err)
			return
		}
		st.Context, st.Last = maps.Clone(c.Context), ""
		if len(st.Context) == 0 {
			st.Context = nil
		}
		s.syncOrder()
	case CloseAggregation, CancelAggregation:
		if st.Open == nil {
			s.refuse(ErrNothingOpen)
			return
		}
		if c.Kind == CloseAggregation {
			if m := s.short(); m != "" {
				s.refuse(fmt.Errorf("%w: %s", ErrTooFewChildren, m))
				return
			}
			s.close(wire.ClosedByCommand)
		} else {
			s.cancel()
		}
		s.out.Signal = s.signal(SignalGood)
		return
	default:
		s.refuse(fmt.Errorf("%w %d", ErrBadCommand, c.Kind))
		return
	}
	s.context(wire.CauseCommand, nil)
	s.out.Signal = SignalGood
}

func checkContext(c map[string]string) error {
	if len(c) > maxContextKeys {
		return fmt.Errorf("%w: %d keys, at most %d allowed", ErrBadContext, len(c), maxContextKeys)
	}
	for k, v := range c {
		if k == "" || len(k) > maxContextKey || len(v) > maxContextValue {
			return fmt.Errorf("%w: key %q: keys 1 to %d bytes, values at most %d", ErrBadContext, k, maxContextKey, maxContextValue)
		}
	}
	return nil
}

func (s *step) refuse(err error) {
	s.out.Err, s.out.Signal = err, SignalBad
}

// read handles a scanner's read: a document, or a unit.
func (s *step) read(now time.Time, r *Read) {
	kind, value, key, ok := Classify(s.cfg, s.rules, r.Raw, r.Fields)
	if ok && kind == wire.DocShipment && r.Unit != "" && (s.st.Mode == ModePack || s.st.Mode == ModeUnpack) {
		ok = false // the pallet itself: a parent or a child
	}
	if ok {
		s.out.Document, s.out.Kind, s.out.Value = true, kind, value
		s.document(now, r, kind, value, key)
		return
	}
	if r.Verdict == wire.Rejected {
		return // neither counted nor packed
	}
	if aggregating(s.st.Mode) && s.aggregate(now, r) {
		return
	}
	s.count(r)
}

func (s *step) document(now time.Time, r *Read, kind, value, key string) {
	st := s.st
	switch kind {
	case wire.DocSerial:
		s.out.Signal = s.signal(s.docSignal())
		return
	case wire.DocClose:
		switch ok := orderKey(st.Context); {
		case st.Open != nil:
			s.close(wire.ClosedByCode)
		case ok != "":
			delete(st.Context, ok)
			st.Last = ""
		default:
			s.find(Reject, "document.nothing_open", "close: no aggregation is open and no order is in context")
		}
	case wire.DocCancel:
		_, last := st.Context[st.Last]
		switch {
		case st.Open != nil:
			s.cancel()
		case last:
			delete(st.Context, st.Last)
			st.Last = ""
		default:
			s.find(Reject, "document.nothing_open", "cancel: no aggregation is open and no document to undo")
		}
	case wire.DocParent:
		parent := r.Unit
		if parent == "" {
			parent = value
		}
		switch {
		case !aggregating(st.Mode):
			s.find(Reject, "document.not_aggregating", fmt.Sprintf("a parent needs mode %s, %s or %s; the station is in %s", ModePack, ModeBuild, ModeUnpack, st.Mode))
		case parent == "":
			s.find(Reject, "aggregation.no_unit", "the parent label names no unit")
		case st.Open == nil:
			s.open(now, parent, r.Fields)
		case st.Open.Parent == parent:
			s.close(wire.ClosedByParent)
		default:
			s.find(Reject, "aggregation.open", fmt.Sprintf("%s of %s is open: close or cancel it first", st.Open.Mode, st.Open.Parent))
		}
	default:
		_, had := st.Context[key]
		switch {
		case len(value) > maxContextValue:
			s.find(Reject, "document.too_long", fmt.Sprintf("%s: %d bytes, a context value is at most %d", kind, len(value), maxContextValue))
		case value == "":
			delete(st.Context, key)
			st.Last = ""
		case !had && len(st.Context) >= maxContextKeys:
			s.find(Reject, "document.context_full", fmt.Sprintf("%s: the context has %d keys already", kind, maxContextKeys))
		default:
			if st.Context == nil {
				st.Context = map[string]string{}
			}
			st.Context[key], st.Last = value, key
		}
	}
	if s.refused() {
		s.out.Signal = SignalBad
		return
	}
	if len(st.Context) == 0 {
		st.Context = nil
	}
	s.syncOrder()
	s.context(wire.CauseDocument, &wire.Document{Kind: kind, Value: value, Scanner: r.Scanner, Raw: r.Raw})
	s.out.Signal = s.signal(s.docSignal())
}

func (s *step) docSignal() string {
	switch s.cfg.DocumentSignal {
	case SignalWarn, SignalBad:
		return s.cfg.DocumentSignal
	}
	return SignalGood
}

// signal is base, made worse by the findings.
func (s *step) signal(base string) string {
	for _, f := range s.out.Findings {
		if f.Policy == Reject {
			return SignalBad
		}
		if base == SignalGood {
			base = SignalWarn
		}
	}
	return base
}

func (s *step) find(policy, code, msg string) {
	if policy != Reject {
		policy = Warn
	}
	s.out.Findings = append(s.out.Findings, Finding{Policy: policy, Reason: wire.Reason{Code: code, Message: msg}})
}

func (s *step) refused() bool {
	return slices.ContainsFunc(s.out.Findings, func(f Finding) bool { return f.Policy == Reject })
}

func (s *step) context(cause string, doc *wire.Document) {
	s.out.Contexts = append(s.out.Contexts, wire.ContextData{
		Mode: s.st.Mode, Context: maps.Clone(s.st.Context), Cause: cause, Document: doc,
	})
}

// get reads the index as this step's writes left it.
func (s *step) get(key string) (string, bool) {
	if i, ok := s.writes[key]; ok {
		v := s.out.Writes[i].Value
		if v == nil {
			return "", false
		}
		return *v, true
	}
	if s.idx == nil {
		return "", false
	}
	return s.idx.Get(key)
}

// put records a write; nil deletes. A key written twice is written once,
// with the last value.
func (s *step) put(key string, v *string) {
	if s.writes == nil {
		s.writes = map[string]int{}
	}
	if i, ok := s.writes[key]; ok {
		s.out.Writes[i].Value = v
		return
	}
	s.writes[key] = len(s.out.Writes)
	s.out.Writes = append(s.out.Writes, Write{Key: key, Value: v})
}

func aggregating(mode string) bool {
	return mode == ModePack || mode == ModeBuild || mode == ModeUnpack
}

// product names a read's product as order lines do: its GTIN-14 or SKU.
func product(fields map[string]string) string {
	if g := fields["gtin"]; g != "" {
		return g
	}
	return fields["sku"]
}
