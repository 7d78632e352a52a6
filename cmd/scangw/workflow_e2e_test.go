package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// Feedback bytes of the workflow tests' scanners: a warning has its own.
const (
	ack  = 0x06
	nak  = 0x15
	warn = 0x07
)

// GS1 test data: GTINs and SSCCs with correct check digits.
const (
	gtinA  = "09506000134352"
	gtinB  = "09506000134369"
	gtinC  = "09506000134376" // on no order
	gtinPk = "09506000134383" // the cases of a pallet
	bike   = "09506000134390"
	ssccA  = "095060001343500019"
	ssccB  = "095060001343500026"
)

// unit is the GS1 element string of a serialized unit: (01) then (21),
// the serial last, so no separator is needed.
func unit(gtin, serial string) string { return "01" + gtin + "21" + serial }

func unitKey(gtin, serial string) string { return "gs1:(01)" + gtin + "(21)" + serial }

// workflowRules is the rule set of the workflow tests: an order with an
// ASN line (exact serials) and a quantity line, a return list.
const workflowRules = `{"schema":1,"version":1,"issued":"2026-11-01T00:00:00Z","scope":"site","site":"plant-w",
 "expected":[
  {"order":"PO-1001","policy":"warn","gtin":"` + gtinA + `","serials":["A1","A2","A3"]},
  {"order":"PO-1001","gtin":"` + gtinB + `","quantity":2}
 ],
 "shipped":[{"gtin":"` + gtinA + `","serials":["R1","R2"],"reason":"not_shipped"}],
 "returns":{"already_returned":"reject"}
}`

// workflowConfig is one gateway with a receiving dock, a packing station,
// a build bench and a returns desk, each on its own pty, EPCIS on.
func workflowConfig(t *testing.T, brokerURL, httpAddr, dir string, lines map[string]*serialsim.Pty) string {
	t.Helper()
	env, err := rules.Unsigned([]byte(workflowRules))
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesFile, env, 0o600); err != nil {
		t.Fatal(err)
	}
	scanner := func(id string) string {
		return fmt.Sprintf(`[{id: %s-h, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15", warn: "\x07"}}]`, id, lines[id].Path())
	}
	cfg := fmt.Sprintf(`
gateway: {id: gw-wf, site: plant-w}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms, keepalive: 5s}
http:    {listen: %q}
log:     {level: warn}
rules:   {allow_unsigned: true, file: %q}
documents:
  - {kind: operator, pattern: 'EMP(?P<value>[0-9]{4})'}
  - {kind: close, pattern: 'CLOSE'}
epcis:   {enabled: true, read_point: "urn:epc:id:sgln:9506000.13435.1", biz_location: "urn:epc:id:sgln:9506000.13435.0"}
stations:
  - id: dock-1
    mode: receive
    documents: [{kind: order, pattern: '(?P<value>PO-[0-9]+)'}]
    orders: {unexpected: reject}
    scanners: %s
  - id: pack-1
    mode: pack
    scanners: %s
  - id: build-1
    mode: build
    scanners: %s
  - id: ret-1
    mode: return
    scanners: %s
`, dir, brokerURL, httpAddr, rulesFile, scanner("dock-1"), scanner("pack-1"), scanner("build-1"), scanner("ret-1"))
	path := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openLines(t *testing.T, ids ...string) map[string]*serialsim.Pty {
	t.Helper()
	lines := map[string]*serialsim.Pty{}
	for _, id := range ids {
		l, err := serialsim.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		lines[id] = l
	}
	return lines
}

// scanAt sends one read and checks the feedback byte it gets.
func scanAt(t *testing.T, l *serialsim.Pty, code string, want byte) {
	t.Helper()
	b, err := l.Send(context.Background(), code, "\r\n", 20*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", code, err)
	}
	if b != want {
		t.Fatalf("%s: feedback %#x, want %#x", code, b, want)
	}
}

// event is what the workflow tests read of an event.
type event struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

func decodeAll[T any](t *testing.T, ms []mosquittotest.Message, typ string) []T {
	t.Helper()
	var out []T
	for _, m := range ms {
		var e event
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		if e.Type != typ {
			continue
		}
		var d T
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		out = append(out, d)
	}
	return out
}

// checkAll holds every message to its schema: the wire contract's, or
// GS1's for the EPCIS topic.
func checkAll(t *testing.T, topics wire.Topics, ms []mosquittotest.Message) {
	t.Helper()
	for _, m := range ms {
		if err := schema.CheckMessage(topics, m.Topic, m.Payload); err != nil {
			t.Errorf("%v\n%s", err, m.Payload)
		}
	}
}

func onStation(ms []mosquittotest.Message, station string) []mosquittotest.Message {
	var out []mosquittotest.Message
	for _, m := range ms {
		if strings.HasSuffix(m.Topic, "/"+station) {
			out = append(out, m)
		}
	}
	return out
}

func countType(ms []mosquittotest.Message, typ string) int {
	n := 0
	for _, m := range ms {
		var e event
		if json.Unmarshal(m.Payload, &e) == nil && e.Type == typ {
			n++
		}
	}
	return n
}

// commander publishes downlink commands and waits for their replies.
type commander struct {
	t       *testing.T
	c       mqtt.Client
	replies *mosquittotest.Subscriber
	topics  wire.Topics
	n       int
}

func newCommander(t *testing.T, broker *mosquittotest.Broker, topics wire.Topics) *commander {
	t.Helper()
	replies := mosquittotest.Subscribe(t, broker, "central-replies", topics.Reply)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("central-cmd"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &commander{t: t, c: c, replies: replies, topics: topics}
}

// do sends a command and returns its reply's data.
func (c *commander) do(cmd, station, args string) wire.Reply {
	c.t.Helper()
	return c.send(cmd, station, args, 20*time.Second)
}

// doUntilAnswered sends a command again until it is answered: right after
// a start the gateway may not have subscribed to its commands yet, and a
// command published before is not kept for it. Only for commands that
// may run twice (a grant taken twice is taken once).
func (c *commander) doUntilAnswered(cmd, station, args string) wire.Reply {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, ok := c.try(cmd, station, args, time.Second)
		if ok {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s never answered", cmd)
		}
	}
}

func (c *commander) send(cmd, station, args string, timeout time.Duration) wire.Reply {
	c.t.Helper()
	r, ok := c.try(cmd, station, args, timeout)
	if !ok {
		c.t.Fatalf("no reply to %s within %v", cmd, timeout)
	}
	return r
}

// try sends a command and waits up to timeout for its reply.
func (c *commander) try(cmd, station, args string, timeout time.Duration) (wire.Reply, bool) {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("c-%d", c.n)
	st := ""
	if station != "" {
		st = fmt.Sprintf(`,"station":%q`, station)
	}
	msg := fmt.Sprintf(`{"v":1,"id":%q,"cmd":%q%s,"args":%s}`, id, cmd, st, args)
	if tok := c.c.Publish(c.topics.Cmd, 1, false, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("publish: %v", tok.Error())
	}
	var r wire.Reply
	ok := c.replies.Await(timeout, func(ms []mosquittotest.Message) bool {
		for _, m := range ms {
			var e struct{ Data wire.Reply }
			if json.Unmarshal(m.Payload, &e) == nil && e.Data.ID == id {
				r = e.Data
				return true
			}
		}
		return false
	})
	return r, ok
}

// TestWorkflowSessions runs the dock's sessions through the real
// pipeline (ptys, the daemon, Mosquitto): a receiving session against an
// ASN, a packing session and an unpack, a build, and returns. Every event
// they publish validates against its schema, the EPCIS documents against
// GS1's.
func TestWorkflowSessions(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	lines := openLines(t, "dock-1", "pack-1", "build-1", "ret-1")
	httpAddr := freeAddr(t)
	path := workflowConfig(t, broker.URL(), httpAddr, t.TempDir(), lines)
	topics := wire.TopicsFor("scangw/v1", "plant-w", "gw-wf")
	events := mosquittotest.Subscribe(t, broker, "central-events", topics.Base+"/events/#")
	scans := mosquittotest.Subscribe(t, broker, "central-scans", topics.Base+"/scans/#")
	epcisDocs := mosquittotest.Subscribe(t, broker, "central-epcis", topics.Base+"/epcis/#")
	cmds := newCommander(t, broker, topics)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg)

	t.Run("receiving", func(t *testing.T) {
		l := lines["dock-1"]
		scanAt(t, l, "EMP0042", ack)          // badge: operator 0042
		scanAt(t, l, "PO-1001", ack)          // the order
		scanAt(t, l, unit(gtinA, "A1"), ack)  // counted
		scanAt(t, l, unit(gtinA, "A2"), ack)  // counted
		scanAt(t, l, unit(gtinA, "A1"), warn) // the same unit again: not counted twice
		scanAt(t, l, unit(gtinC, "Z9"), nak)  // a product the order does not list: policy reject
		scanAt(t, l, unit(gtinA, "A3"), ack)  // the ASN's line is met
		scanAt(t, l, unit(gtinB, "B1"), ack)  // the quantity line
		scanAt(t, l, unit(gtinB, "B2"), ack)  // ... met: the order is complete
		scanAt(t, l, unit(gtinB, "B3"), warn) // over-scan: warn (default)
		scanAt(t, l, unit(gtinA, "A9"), warn) // a serial the ASN does not name

		events.WaitFor(20*time.Second, "the receiving session's events", func(ms []mosquittotest.Message) bool {
			return countType(onStation(ms, "dock-1"), wire.OrderType) >= 9
		})
		ms := onStation(events.Messages(), "dock-1")
		ctxs := decodeAll[wire.ContextData](t, ms, wire.ContextType)
		if len(ctxs) != 2 || ctxs[0].Cause != wire.CauseDocument || ctxs[0].Document.Kind != wire.DocOperator || ctxs[0].Context["operator"] != "0042" ||
			ctxs[1].Document.Kind != wire.DocOrder || ctxs[1].Context["order"] != "PO-1001" || ctxs[1].Context["operator"] != "0042" {
			t.Fatalf("context events: %+v", ctxs)
		}
		orders := decodeAll[wire.OrderData](t, ms, wire.OrderType)
		var outcomes []string
		complete := 0
		for _, o := range orders {
			outcomes = append(outcomes, o.Last.Outcome)
			if o.Status == wire.OrderComplete {
				complete++
			}
		}
		want := []string{wire.OrderCounted, wire.OrderCounted, wire.OrderRepeat, wire.OrderUnexpected, wire.OrderCounted,
			wire.OrderCounted, wire.OrderCounted, wire.OrderOver, wire.OrderWrongSerial}
		if !slices.Equal(outcomes, want) {
			t.Fatalf("order outcomes %v, want %v", outcomes, want)
		}
		if complete != 1 || orders[6].Status != wire.OrderComplete {
			t.Fatalf("completion: %d complete events, the one at B2 is %q", complete, orders[6].Status)
		}
		last := orders[len(orders)-1]
		if last.Counted != 5 || last.Remaining != 0 || last.Over != 1 || last.Unexpected != 1 || last.WrongSerial != 1 {
			t.Fatalf("final progress: %+v", last)
		}
		// Each order event names the scan it reports on, stored before it.
		scanIDs := map[string]bool{}
		scans.WaitFor(20*time.Second, "the receiving session's scans", func(ms []mosquittotest.Message) bool {
			return len(onStation(ms, "dock-1")) >= 9
		})
		for _, m := range onStation(scans.Messages(), "dock-1") {
			var e event
			json.Unmarshal(m.Payload, &e)
			scanIDs[e.ID] = true
		}
		for _, o := range orders {
			if !scanIDs[o.Last.Scan] {
				t.Errorf("order event for scan %s: no such scan", o.Last.Scan)
			}
		}
		// The status page shows the progress.
		var st struct {
			Stations []wire.StationStatus `json:"stations"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/status")), &st); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(st.Stations, func(s wire.StationStatus) bool { return s.ID == "dock-1" })
		if i < 0 || st.Stations[i].Order == nil || st.Stations[i].Order.Order != "PO-1001" || !st.Stations[i].Order.Complete || st.Stations[i].Order.Counted != 5 {
			t.Fatalf("/status of dock-1: %+v", st.Stations)
		}
		if page := httpGet(t, "http://"+httpAddr+"/"); !strings.Contains(page, "order PO-1001: 5 counted, 0 to go · 1 over · 1 unexpected · 1 wrong serial · complete") {
			t.Fatalf("the status page does not show the order's progress:\n%s", page)
		}
	})

	t.Run("packing", func(t *testing.T) {
		l := lines["pack-1"]
		scanAt(t, l, "00"+ssccA, ack) // the pallet: the parent
		var cases []string
		for i := range 12 {
			s := fmt.Sprintf("C%02d", i)
			scanAt(t, l, unit(gtinPk, s), ack)
			cases = append(cases, unitKey(gtinPk, s))
		}
		scanAt(t, l, unit(gtinPk, "C03"), warn) // already in this pallet: not added twice
		scanAt(t, l, "00"+ssccA, ack)           // the parent again closes it

		if r := cmds.do(wire.CmdSetMode, "pack-1", `{"mode":"unpack"}`); !r.OK {
			t.Fatalf("set_mode unpack: %+v", r.Error)
		}
		scanAt(t, l, "00"+ssccA, ack)
		scanAt(t, l, unit(gtinPk, "C05"), ack)
		scanAt(t, l, unit(gtinA, "A1"), nak) // not on this pallet
		scanAt(t, l, "CLOSE", ack)

		events.WaitFor(20*time.Second, "two aggregations", func(ms []mosquittotest.Message) bool {
			return countType(onStation(ms, "pack-1"), wire.AggregationType) >= 2
		})
		aggs := decodeAll[wire.AggregationData](t, onStation(events.Messages(), "pack-1"), wire.AggregationType)
		if len(aggs) != 2 {
			t.Fatalf("aggregations: %+v", aggs)
		}
		if a := aggs[0]; a.Action != wire.AggAdd || a.Parent != "gs1:(00)"+ssccA || !slices.Equal(a.Children, cases) || a.ClosedBy != wire.ClosedByParent {
			t.Fatalf("pack: %+v", a)
		}
		if a := aggs[1]; a.Action != wire.AggDelete || a.Mode != "unpack" || !slices.Equal(a.Children, []string{unitKey(gtinPk, "C05")}) || a.ClosedBy != wire.ClosedByCode {
			t.Fatalf("unpack: %+v", a)
		}
		epcisDocs.WaitFor(20*time.Second, "the pack's EPCIS aggregation events", func(ms []mosquittotest.Message) bool {
			return len(onStation(ms, "pack-1")) >= 2
		})
		docs := onStation(epcisDocs.Messages(), "pack-1")
		for i, action := range []string{"ADD", "DELETE"} {
			var d struct {
				EPCISBody struct {
					EventList []struct {
						Type      string   `json:"type"`
						Action    string   `json:"action"`
						ParentID  string   `json:"parentID"`
						ChildEPCs []string `json:"childEPCs"`
					} `json:"eventList"`
				} `json:"epcisBody"`
			}
			if err := json.Unmarshal(docs[i].Payload, &d); err != nil || len(d.EPCISBody.EventList) != 1 {
				t.Fatalf("EPCIS document %d: %v %s", i, err, docs[i].Payload)
			}
			e := d.EPCISBody.EventList[0]
			if e.Type != "AggregationEvent" || e.Action != action || e.ParentID != "https://id.gs1.org/00/"+ssccA {
				t.Fatalf("EPCIS document %d: %+v", i, e)
			}
			if want := map[string]int{"ADD": 12, "DELETE": 1}[action]; len(e.ChildEPCs) != want {
				t.Fatalf("EPCIS %s: %d children, want %d", action, len(e.ChildEPCs), want)
			}
		}
	})

	t.Run("build", func(t *testing.T) {
		l := lines["build-1"]
		scanAt(t, l, unit(bike, "BIKE-7"), ack) // the frame: the parent
		for _, p := range []string{"P1", "P2", "P3"} {
			scanAt(t, l, unit(gtinB, p), ack)
		}
		scanAt(t, l, unit(gtinPk, "C01"), nak) // a case packed on a pallet: in a parent already
		scanAt(t, l, "CLOSE", ack)
		events.WaitFor(20*time.Second, "the build", func(ms []mosquittotest.Message) bool {
			return countType(onStation(ms, "build-1"), wire.AggregationType) >= 1
		})
		aggs := decodeAll[wire.AggregationData](t, onStation(events.Messages(), "build-1"), wire.AggregationType)
		want := []string{unitKey(gtinB, "P1"), unitKey(gtinB, "P2"), unitKey(gtinB, "P3")}
		if len(aggs) != 1 || aggs[0].Parent != unitKey(bike, "BIKE-7") || !slices.Equal(aggs[0].Children, want) || aggs[0].Mode != "build" {
			t.Fatalf("build: %+v", aggs)
		}
	})

	t.Run("returns", func(t *testing.T) {
		l := lines["ret-1"]
		scanAt(t, l, unit(gtinA, "R1"), ack) // shipped: it is ours
		scanAt(t, l, unit(gtinA, "X7"), nak) // never shipped
		scanAt(t, l, unit(gtinA, "R1"), nak) // already returned
		scans.WaitFor(20*time.Second, "the returns", func(ms []mosquittotest.Message) bool {
			return len(onStation(ms, "ret-1")) >= 3
		})
		rs := decodeAll[wire.ScanData](t, onStation(scans.Messages(), "ret-1"), wire.ScanType)
		codes := func(d wire.ScanData) []string {
			var c []string
			for _, r := range d.Reasons {
				c = append(c, r.Code)
			}
			return c
		}
		if rs[0].Verdict != wire.Accepted || rs[1].Verdict != wire.Rejected || !slices.Contains(codes(rs[1]), "not_shipped") ||
			rs[2].Verdict != wire.Rejected || !slices.Contains(codes(rs[2]), "already_returned") {
			t.Fatalf("returns: %+v", rs)
		}
	})

	checkAll(t, topics, events.Messages())
	checkAll(t, topics, scans.Messages())
	checkAll(t, topics, epcisDocs.Messages())
	// Accepted and warned scans outside the aggregation modes, and each
	// aggregation, have their EPCIS document; rejected scans have none.
	if n := len(onStation(epcisDocs.Messages(), "dock-1")); n != 8 {
		t.Errorf("dock-1: %d EPCIS documents, want 8 (the accepted and warned scans)", n)
	}
}

// TestWorkflowSurvivesKill: a SIGKILL in the middle of a packing session
// and of an order. After the restart the open pallet has the cases packed
// before the kill, the order's progress is where it was (a unit counted
// before is not counted again), and every read the operator heard a good
// beep for reached the broker.
func TestWorkflowSurvivesKill(t *testing.T) {
	bin := buildScangw(t)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	lines := openLines(t, "dock-1", "pack-1", "build-1", "ret-1")
	path := workflowConfig(t, broker.URL(), freeAddr(t), t.TempDir(), lines)
	topics := wire.TopicsFor("scangw/v1", "plant-w", "gw-wf")
	events := mosquittotest.Subscribe(t, broker, "central-events", topics.Base+"/events/#")
	scans := mosquittotest.Subscribe(t, broker, "central-scans", topics.Base+"/scans/#")
	d := crashNewDaemon(t, bin, path, filepath.Join(t.TempDir(), "scangw.log"))
	d.start()

	dock, pack := lines["dock-1"], lines["pack-1"]
	acked := map[string]int{} // raw -> times it got a good or warn byte
	scanOK := func(l *serialsim.Pty, code string, want byte) {
		t.Helper()
		scanAt(t, l, code, want)
		acked[code]++
	}
	scanOK(dock, "EMP0042", ack)
	scanOK(dock, "PO-1001", ack)
	scanOK(dock, unit(gtinA, "A1"), ack)
	scanOK(dock, unit(gtinA, "A2"), ack)
	scanOK(pack, "00"+ssccB, ack)
	var cases []string
	for i := range 5 {
		s := fmt.Sprintf("K%02d", i)
		scanOK(pack, unit(gtinPk, s), ack)
		cases = append(cases, unitKey(gtinPk, s))
	}
	d.kill9()
	d.start()

	scanOK(dock, unit(gtinA, "A1"), warn) // counted before the kill: a repeat
	scanOK(dock, unit(gtinA, "A3"), ack)
	for i := 5; i < 10; i++ {
		s := fmt.Sprintf("K%02d", i)
		scanOK(pack, unit(gtinPk, s), ack)
		cases = append(cases, unitKey(gtinPk, s))
	}
	scanOK(pack, "00"+ssccB, ack)

	events.WaitFor(30*time.Second, "the pallet's aggregation", func(ms []mosquittotest.Message) bool {
		return countType(onStation(ms, "pack-1"), wire.AggregationType) >= 1
	})
	aggs := decodeAll[wire.AggregationData](t, onStation(events.Messages(), "pack-1"), wire.AggregationType)
	if len(aggs) != 1 || aggs[0].Parent != "gs1:(00)"+ssccB || !slices.Equal(aggs[0].Children, cases) {
		t.Fatalf("aggregation after the kill: %+v\nwant the 10 cases %v", aggs, cases)
	}
	events.WaitFor(30*time.Second, "the order's progress", func(ms []mosquittotest.Message) bool {
		return countType(onStation(ms, "dock-1"), wire.OrderType) >= 4
	})
	orders := decodeAll[wire.OrderData](t, onStation(events.Messages(), "dock-1"), wire.OrderType)
	last := orders[len(orders)-1]
	if last.Last.Outcome != wire.OrderCounted || last.Counted != 3 || last.Lines[0].Counted != 3 {
		t.Fatalf("progress after the kill: %+v", last)
	}
	if r := orders[len(orders)-2]; r.Last.Outcome != wire.OrderRepeat || r.Counted != 2 {
		t.Fatalf("A1 after the kill: %+v, want a repeat with 2 counted", r)
	}
	// Every product read that was answered is at the broker.
	scans.WaitFor(30*time.Second, "every answered scan", func(ms []mosquittotest.Message) bool {
		got := map[string]bool{}
		for _, d := range decodeAll[wire.ScanData](t, ms, wire.ScanType) {
			got[d.Raw] = true
		}
		for code := range acked {
			if !got[code] && !strings.HasPrefix(code, "EMP") && !strings.HasPrefix(code, "PO-") {
				return false
			}
		}
		return true
	})
	checkAll(t, topics, events.Messages())
	checkAll(t, topics, scans.Messages())
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
