package workflow

import (
	"slices"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// memIndex is the fake Index: a map the writes are applied to.
type memIndex map[string]string

func (m memIndex) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }

func (m memIndex) apply(ws []Write) {
	for _, w := range ws {
		if w.Value == nil {
			delete(m, w.Key)
		} else {
			m[w.Key] = *w.Value
		}
	}
}

// fakeRules serves fixed documents, orders and children's requirements.
type fakeRules struct {
	docs     []Pattern
	orders   map[string]Order
	children map[string]Children // by parent product
}

func (f *fakeRules) Documents() []Pattern { return f.docs }

func (f *fakeRules) Order(name string) (Order, bool) { o, ok := f.orders[name]; return o, ok }

func (f *fakeRules) Children(parent string) (Children, bool) {
	c, ok := f.children[parent]
	return c, ok
}

// station runs Step as the caller would: the next state kept, the writes
// applied to a (possibly shared) index.
type station struct {
	t     *testing.T
	cfg   Config
	rules Rules
	idx   memIndex
	st    *State
	now   time.Time
}

var t0 = time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)

func newStation(t *testing.T, id, mode string, idx memIndex, rules Rules) *station {
	return &station{t: t, cfg: Config{Station: id}, rules: rules, idx: idx, st: &State{Mode: mode}, now: t0}
}

func (s *station) step(in Input) Outcome {
	s.t.Helper()
	if in.Time.IsZero() {
		in.Time = s.now.Add(time.Second)
	}
	s.now = in.Time
	before := s.st.Clone()
	out := Step(s.cfg, s.rules, s.idx, s.st, in)
	if !equalState(s.st, before) {
		s.t.Fatalf("Step modified its input state: %+v, was %+v", s.st, before)
	}
	if out.Next != nil {
		s.st = out.Next
	}
	s.idx.apply(out.Writes)
	return out
}

func (s *station) read(raw string, fields map[string]string, unit string) Outcome {
	s.t.Helper()
	return s.step(Input{Read: &Read{Scan: "scan-" + raw, Scanner: "s1", Raw: raw, Fields: fields, Unit: unit, Verdict: wire.Accepted}})
}

func (s *station) cmd(c Command) Outcome {
	s.t.Helper()
	return s.step(Input{Command: &c})
}

// unit reads a serialized product: GTIN gtin, serial sn.
func (s *station) unit(gtin, sn string) Outcome {
	s.t.Helper()
	return s.read("(01)"+gtin+"(21)"+sn, map[string]string{"gtin": gtin, "serial": sn}, unitKey(gtin, sn))
}

func (s *station) sscc(sscc string) Outcome {
	s.t.Helper()
	return s.read("(00)"+sscc, map[string]string{"sscc": sscc}, "gs1:(00)"+sscc)
}

func unitKey(gtin, sn string) string { return "gs1:(01)" + gtin + "(21)" + sn }

func equalState(a, b *State) bool {
	ja, jb := encode(a), encode(b)
	return *ja == *jb
}

func mustPattern(t *testing.T, kind, expr, key string) Pattern {
	t.Helper()
	p, err := NewPattern(kind, expr, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Policy+":"+f.Reason.Code)
	}
	return out
}

func wantFindings(t *testing.T, out Outcome, want ...string) {
	t.Helper()
	if got := codes(out.Findings); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
}
