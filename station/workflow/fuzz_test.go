package workflow

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

func FuzzClassify(f *testing.F) {
	for _, s := range []struct{ raw, sscc, gtin string }{
		{"PO-1234", "", ""},
		{"BADGE-0042", "", ""},
		{"(00)" + ssccOne, ssccOne, ""},
		{"4144012345000009", "", ""},
		{"414401234500000925401A", "", ""},
		{"(414)4012345000009(254)D3", "", ""},
		{"https://id.gs1.org/414/4012345000009/254/D3", "", ""},
		{"(01)" + gtinA + "(21)1", "", gtinA},
		{"CLOSE", "", ""},
		{"LOC-" + strings.Repeat("x", 300), "", ""},
		{"", "", ""},
	} {
		f.Add(s.raw, s.sscc, s.gtin)
	}
	cfg := Config{Station: "f", Documents: append([]Pattern{
		{Kind: wire.DocOperator, Match: regexp.MustCompile(`^BADGE-(?P<value>[0-9]*)$`)},
		{Kind: wire.DocLocation, Match: regexp.MustCompile(`LOC-(?P<value>.*)|(?P<value2>Q)`), Key: "dock"},
		{Kind: wire.DocClose, Match: regexp.MustCompile(`^CLOSE$`)},
		{Kind: wire.DocCancel, Match: regexp.MustCompile(`^CANCEL$`)},
		{Kind: wire.DocParent, Match: regexp.MustCompile(`^TOTE.*`)},
		{Kind: wire.DocSerial, Match: regexp.MustCompile(`^NEW$`)},
	}, BuiltinPatterns()...)}
	rules := &fakeRules{docs: []Pattern{{Kind: wire.DocOrder, Match: regexp.MustCompile(`^PO-.*`)}},
		orders: map[string]Order{"PO-1234": {Name: "PO-1234", Lines: []Line{{Product: gtinA, Quantity: 1}}}}}
	f.Fuzz(func(t *testing.T, raw, sscc, gtin string) {
		fields := map[string]string{"sscc": sscc, "gtin": gtin}
		kind, value, key, ok := Classify(cfg, rules, raw, fields)
		if ok {
			if !slices.Contains(wire.DocumentKinds, kind) {
				t.Fatalf("kind %q", kind)
			}
			if (key == "") != (kind == wire.DocClose || kind == wire.DocCancel) {
				t.Fatalf("kind %q has key %q", kind, key)
			}
			if g := gln(raw); !strings.Contains(raw, value) && value != sscc && value != g {
				t.Fatalf("value %q comes from nowhere in %q", value, raw)
			}
		} else if kind != "" || value != "" || key != "" {
			t.Fatalf("no document, yet %q %q %q", kind, value, key)
		}
		for _, mode := range []string{"receive", ModePack, ModeUnpack} {
			st := &State{Mode: mode, Context: map[string]string{"order": "PO-1234"}}
			out := Step(cfg, rules, memIndex{}, st, Input{Time: t0, Read: &Read{Raw: raw, Fields: fields, Unit: "u:" + raw, Verdict: wire.Accepted}})
			if out.Document != ok && !(kind == wire.DocShipment && mode != "receive") {
				t.Fatalf("mode %s: Document %v, classified %v", mode, out.Document, ok)
			}
			if n := out.Next; n != nil {
				if err := checkContext(n.Context); err != nil {
					t.Fatalf("mode %s: %v", mode, err)
				}
			}
		}
	})
}

// FuzzAggregation runs random reads, codes and commands at two stations
// sharing one index, and checks after every step that no unit is in two
// parents: by the events (an add of a unit already added, without a
// delete between) and by the index and open aggregations. Units c1 and
// c2 are of a product whose rules require two children of c3's and c4's
// product: every add of theirs has exactly that.
func FuzzAggregation(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 2, 3, 0, 0, 0x80, 1, 0x80, 2, 0x80, 1, 0x80, 3, 0})
	f.Add([]byte{1, 0, 6, 1, 0, 0, 0, 2, 3, 0, 6, 0, 0, 1, 0, 2, 0x80, 0, 0x80, 2})
	f.Add([]byte{2, 0, 2, 0, 1, 2, 1, 3, 1, 4, 1, 5, 0x86, 1, 0x80, 0, 0x80, 3, 4, 0, 0x85, 1})
	f.Add([]byte{0, 7, 0, 0, 4, 3, 0, 0x87, 1, 0x80, 4, 7, 3, 0, 2, 0x84, 0})
	f.Add([]byte{3, 0, 2, 0, 0, 0, 4, 3, 0, 0, 2, 0, 5, 0, 2, 0}) // c1 requires 2 of c3's product: refused, then closed by count
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) == 0 {
			return
		}
		idx := memIndex{}
		units := []string{"gs1:(00)" + ssccOne, "gs1:(00)" + ssccTwo, "c1", "c2", "c3", "c4"}
		fields := map[string]map[string]string{"c1": {"gtin": gtinCase}, "c2": {"gtin": gtinCase}, "c3": {"gtin": gtinA}, "c4": {"gtin": gtinA}}
		rules := &fakeRules{children: map[string]Children{gtinCase: {Products: []string{gtinA}, Count: 2}}}
		var sts [2]*station
		for i := range sts {
			s := packing(t, fmt.Sprintf("st%d", i), idx)
			s.rules = rules
			s.cfg.ChildCount = int(prog[0] % 4)
			s.cfg.MaxChildren = 3
			s.cfg.Idle = 5 * time.Minute
			s.cfg.Documents = append(s.cfg.Documents, mustPattern(t, wire.DocParent, `TOTE`, ""))
			sts[i] = s
		}
		members := map[string]string{} // child -> parent, by the events
		for i := 1; i+1 < len(prog); i += 2 {
			s, op, arg := sts[prog[i]>>7], prog[i]&7, prog[i+1]
			var out Outcome
			switch op {
			case 0, 1, 2:
				u := units[int(arg&0x7f)%len(units)]
				verdict := wire.Accepted
				if arg&0x80 != 0 {
					verdict = wire.Rejected
				}
				out = s.step(Input{Read: &Read{Raw: u, Fields: fields[u], Unit: u, Verdict: verdict}})
			case 3:
				out = s.read("CLOSE", nil, "")
			case 4:
				out = s.read("CANCEL", nil, "")
			case 5:
				out = s.cmd(Command{Kind: CloseAggregation + CommandKind(arg%2)})
			case 6:
				out = s.cmd(Command{Kind: SetMode, Mode: []string{ModePack, ModeUnpack, ModeBuild, "receive"}[arg%4]})
			case 7:
				if arg%2 == 0 {
					out = s.step(Input{Time: s.now.Add(time.Duration(arg) * time.Minute)})
				} else {
					out = s.read("TOTE", nil, "")
				}
			}
			for _, ag := range out.Aggregations {
				if ag.Parent == "" || len(ag.Children) == 0 {
					t.Fatalf("aggregation without parent or children: %+v", ag)
				}
				if fields[ag.Parent]["gtin"] == gtinCase && ag.Action == wire.AggAdd {
					if len(ag.Children) != 2 || fields[ag.Children[0]]["gtin"] != gtinA || fields[ag.Children[1]]["gtin"] != gtinA {
						t.Fatalf("%s requires 2 children of %s: %+v", ag.Parent, gtinA, ag)
					}
				}
				for _, c := range ag.Children {
					switch ag.Action {
					case wire.AggAdd:
						if p, ok := members[c]; ok {
							t.Fatalf("%s added to %s while in %s", c, ag.Parent, p)
						}
						if c == ag.Parent {
							t.Fatalf("%s added to itself", c)
						}
						members[c] = ag.Parent
					case wire.AggDelete:
						if members[c] != ag.Parent {
							t.Fatalf("%s deleted from %s, but it is in %q", c, ag.Parent, members[c])
						}
						delete(members, c)
					}
				}
			}
			checkIndex(t, idx, members, sts[:])
		}
	})
}

func checkIndex(t *testing.T, idx memIndex, members map[string]string, sts []*station) {
	t.Helper()
	open := map[string]string{} // child -> station, of open packs and builds
	for _, s := range sts {
		o := s.st.Open
		if o == nil || o.Mode == ModeUnpack {
			continue
		}
		for _, c := range o.Children {
			if prev, ok := open[c]; ok {
				t.Fatalf("%s is open at %s and %s", c, prev, s.cfg.Station)
			}
			open[c] = s.cfg.Station
			want := Link{Parent: o.Parent, Station: s.cfg.Station, Open: true}
			var l Link
			if err := json.Unmarshal([]byte(idx[ChildKey(c)]), &l); err != nil || l != want {
				t.Fatalf("open child %s links %q, want %+v", c, idx[ChildKey(c)], want)
			}
		}
	}
	closed := 0
	for k, v := range idx {
		c, ok := strings.CutPrefix(k, IndexPrefix+"child/")
		if !ok {
			continue
		}
		var l Link
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if l.Open {
			if open[c] != l.Station {
				t.Fatalf("%s marked open at %s, which has no such open child", c, l.Station)
			}
			continue
		}
		closed++
		if members[c] != l.Parent {
			t.Fatalf("%s closed in %s by the index, in %q by the events", c, l.Parent, members[c])
		}
	}
	if closed != len(members) {
		t.Fatalf("%d closed links, %d children by the events", closed, len(members))
	}
}
