package station

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// refusingWrites stores plain scans but refuses every Write, like a disk
// that fills up just as a workflow step is stored.
type refusingWrites struct{ *buffer.Buffer }

func (refusingWrites) SubmitWrite(context.Context, buffer.Write) func() ([]uint64, error) {
	return func() ([]uint64, error) { return nil, buffer.ErrFull }
}

func flowStation(t *testing.T, store Store, state StateStore, flow workflow.Config, sc Scanner) *Station {
	t.Helper()
	cfg := Config{ID: "dock-1", Mode: "receive", Site: "s", Gateway: "g", Flow: flow}
	return New(cfg, Deps{Scanners: []Scanner{sc}, Store: store, State: state, Validator: LengthRule{Min: 1, Max: 64},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }})
}

// TestDocumentInForceOnlyOnceStored: a document read changes the context
// only once its event and the state are stored; when the store refuses
// them, the context stays as it was and the operator gets the bad signal.
func TestDocumentInForceOnlyOnceStored(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	order, err := workflow.NewPattern(wire.DocOrder, `(?P<value>PO-[0-9]+)`, "")
	if err != nil {
		t.Fatal(err)
	}
	flow := workflow.Config{Documents: []workflow.Pattern{order}}

	sc := newPlayback("h1", "PO-1")
	st := flowStation(t, refusingWrites{buf}, buf, flow, sc)
	run(t, st, sc)
	if _, c := st.State(); c["order"] != "" {
		t.Fatalf("context %v after a refused write: the document was put in force anyway", c)
	}
	if got := sc.signals(); !slices.Equal(got, []device.Signal{device.Bad}) {
		t.Fatalf("signals %v, want the bad one", got)
	}
	if _, err := buf.LoadState("station/dock-1"); err == nil {
		t.Fatal("a station state was saved although its write was refused")
	}

	sc = newPlayback("h1", "PO-2", "ITEM-1")
	st = flowStation(t, buf, buf, flow, sc)
	run(t, st, sc)
	if _, c := st.State(); c["order"] != "PO-2" {
		t.Fatalf("context %v, want order PO-2", c)
	}
	es, err := buf.Peek(0, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("%d entries (%v), want the context event and the scan", len(es), err)
	}
	var ev struct {
		Type string
		Data wire.ContextData
	}
	if err := json.Unmarshal(es[0].Payload, &ev); err != nil || ev.Type != wire.ContextType || ev.Data.Document == nil || ev.Data.Document.Raw != "PO-2" {
		t.Fatalf("first entry %s (%v), want the document's context event", es[0].Payload, err)
	}
	// The state survives a restart with the context it had.
	st = flowStation(t, buf, buf, flow, newPlayback("h1"))
	if _, c := st.State(); c["order"] != "PO-2" {
		t.Fatalf("after a restart the context is %v", c)
	}
}

// TestVerifyTimesOut: a label nobody scanned within the verify time-out
// is recorded as verify_timeout and answered with the bad signal; a
// restart in between still awaits it.
func TestVerifyTimesOut(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	a := testAssigner(t, buf)
	newSt := func(sc Scanner) *Station {
		cfg := Config{ID: "bench-1", Mode: "assign", Site: "s", Gateway: "g",
			Assign: &AssignConfig{Scheme: "u", Verify: true, VerifyTimeout: time.Minute}}
		return New(cfg, Deps{Scanners: []Scanner{sc}, Store: buf, State: buf, Validator: LengthRule{Min: 1, Max: 64},
			Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }, Assigner: a})
	}
	ctx := context.Background()
	st := newSt(newPlayback("h1"))
	d, err := st.AssignSerial(ctx, wire.TriggerLocal, Product{})
	if err != nil || d.Serial != "SN000001" {
		t.Fatalf("assign: %+v %v", d, err)
	}
	sc := newPlayback("h1")
	st = newSt(sc) // a restart: the serial is still awaited
	if got := st.Status().Verify; got != "SN000001" {
		t.Fatalf("after a restart the station awaits %q", got)
	}
	st.tick(ctx) // within the time-out: nothing
	if st.Status().Verify == "" {
		t.Fatal("the verification ended before its time-out")
	}
	st.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	st.tick(ctx)
	if got := st.Status().Verify; got != "" {
		t.Fatalf("still awaiting %q after the time-out", got)
	}
	if got := sc.signals(); !slices.Equal(got, []device.Signal{device.Bad}) {
		t.Fatalf("signals %v, want the bad one at the time-out", got)
	}
	es, err := buf.Peek(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, e := range es {
		var ev struct{ Data wire.AssignedData }
		json.Unmarshal(e.Payload, &ev)
		statuses = append(statuses, ev.Data.Status)
	}
	if want := []string{wire.AssignIssued, wire.AssignVerifyTimeout}; !slices.Equal(statuses, want) {
		t.Fatalf("events %v, want %v", statuses, want)
	}
	if _, err := buf.LoadState("station/bench-1/verify"); err == nil {
		t.Fatal("the awaited serial is still saved after its time-out")
	}

	// A new serial while one awaits its verify read ends that one, in
	// the same write, as superseded.
	if _, err := st.AssignSerial(ctx, wire.TriggerLocal, Product{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AssignSerial(ctx, wire.TriggerLocal, Product{}); err != nil {
		t.Fatal(err)
	}
	if got := st.Status().Verify; got != "SN000003" {
		t.Fatalf("awaiting %q, want the newest serial", got)
	}
	es, err = buf.Peek(0, 10)
	if err != nil || len(es) != 5 {
		t.Fatalf("%d entries (%v), want 5", len(es), err)
	}
	var sup struct{ Data wire.AssignedData }
	json.Unmarshal(es[3].Payload, &sup)
	if sup.Data.Status != wire.AssignVerifyTimeout || sup.Data.Serial != "SN000002" || len(sup.Data.Reasons) != 1 || sup.Data.Reasons[0].Code != "verify.superseded" {
		t.Fatalf("entry 4: %s, want SN000002's verification ended as superseded", es[3].Payload)
	}
}

// TestNoSchemeNoPanic: a station that assigns no serials, on a gateway
// that does, refuses a command and a "new serial" code with a reason.
func TestNoSchemeNoPanic(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	a := testAssigner(t, buf)
	doc, err := workflow.NewPattern(wire.DocSerial, "NEWSERIAL", "")
	if err != nil {
		t.Fatal(err)
	}
	sc := newPlayback("h1", "NEWSERIAL")
	cfg := Config{ID: "dock-1", Mode: "receive", Site: "s", Gateway: "g", Flow: workflow.Config{Documents: []workflow.Pattern{doc}}}
	st := New(cfg, Deps{Scanners: []Scanner{sc}, Store: buf, State: buf, Validator: LengthRule{Min: 1, Max: 64},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }, Assigner: a})
	var we *wire.Error
	if _, err := st.AssignSerial(context.Background(), wire.TriggerCommand, Product{}); !errors.As(err, &we) || we.Code != wire.CodeBadArgs {
		t.Fatalf("assign at a station without a scheme: %v, want bad_args", err)
	}
	run(t, st, sc)
	if got := sc.signals(); !slices.Equal(got, []device.Signal{device.Bad}) {
		t.Fatalf("signals %v, want the bad one", got)
	}
	rs := st.Recent()
	if len(rs) != 1 || len(rs[0].Reasons) < 2 || rs[0].Reasons[1].Code != "serial.refused" {
		t.Fatalf("the refused code's outcome: %+v", rs)
	}
}

// FuzzCommandArgs: the workflow's and the assigner's downlink commands
// take any args without a panic, and refuse bad ones as the request's
// fault (a *wire.Error).
func FuzzCommandArgs(f *testing.F) {
	for _, s := range []string{``, `{}`, `null`, `{"gtin":"09506000134352","lot":"L1","expiry":"271231"}`, `{"serial":"SN1"}`,
		`{"gtin":1}`, `[]`, `{"x":1}`, `{} {}`, `{"serial":"a"}trailing`} {
		f.Add([]byte(s))
	}
	st := New(Config{ID: "d1", Mode: "pack", Site: "s", Gateway: "g"}, Deps{Store: failingStore{}, Validator: LengthRule{Min: 1, Max: 9},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }})
	set, err := NewSet(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		ctx := context.Background()
		for _, cmd := range []func(context.Context, string, json.RawMessage) (any, error){set.AssignSerial, set.Reprint, set.CloseAggregation, set.CancelAggregation} {
			_, err := cmd(ctx, "d1", args)
			var we *wire.Error
			if err != nil && !errors.As(err, &we) {
				t.Fatalf("args %q: %v is not a reply error", args, err)
			}
		}
	})
}

// testAssigner is an assigner on buf with one free scheme, u: SN{seq:6}.
func testAssigner(t *testing.T, buf *buffer.Buffer) *assign.Assigner {
	t.Helper()
	tpl, err := serials.Parse("SN{seq:6}")
	if err != nil {
		t.Fatal(err)
	}
	a, err := assign.New(assign.Options{Site: "s", Gateway: "g", Schemes: []assign.Scheme{{Name: "u", Template: tpl, Start: 1}},
		Store: buf, Log: slogDiscard(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
