package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/device/zpl/zpltest"
	"github.com/scangw/scangw/station/inspect"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// serialConfig is a gateway with two benches that assign serials and
// print on one printer: bench-1 in mode assign (a product read asks),
// with verification; bench-2 by a "new serial" control code, from a
// scheme whose numbers the central system grants.
func serialConfig(t *testing.T, brokerURL, httpAddr, printer string, lines map[string]*serialsim.Pty) string {
	t.Helper()
	scanner := func(id string) string {
		return fmt.Sprintf(`[{id: %s-h, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15", warn: "\x07"}}]`, id, lines[id].Path())
	}
	cfg := fmt.Sprintf(`
gateway: {id: gw-sn, site: ps}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms, keepalive: 5s, heartbeat: 1s}
http:    {listen: %q}
log:     {level: warn}
documents: [{kind: new_serial, pattern: NEWSERIAL}]
serials:
  - {name: unit, template: "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}"}
  - {name: blk, template: "B{seq:7}{check:luhn}", granted: true, low_water: 2}
printers: [{id: zebra-1, addr: %q, retry: 20ms}]
stations:
  - id: bench-1
    mode: assign
    assign: {scheme: unit, printer: zebra-1, verify: true, verify_timeout: 1m}
    scanners: %s
  - id: bench-2
    mode: receive
    assign: {scheme: blk, printer: zebra-1}
    scanners: %s
`, t.TempDir(), brokerURL, httpAddr, printer, scanner("bench-1"), scanner("bench-2"))
	path := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dataMatrix is the element string a printed job's DataMatrix carries.
func dataMatrix(t *testing.T, job []byte) string {
	t.Helper()
	j, err := label.ParseJob(job)
	if err != nil {
		t.Fatalf("the job does not parse: %v\n%s", err, job)
	}
	dm := j.DataMatrix()
	if len(dm) != 1 {
		t.Fatalf("the job has %d DataMatrix fields, want 1:\n%s", len(dm), job)
	}
	return dm[0].Data
}

func assignedEvents(t *testing.T, s *mosquittotest.Subscriber) []wire.AssignedData {
	t.Helper()
	return decodeAll[wire.AssignedData](t, s.Messages(), wire.AssignedType)
}

// TestSerialAssignment: serials assigned at a bench through the whole
// daemon (ptys, Mosquitto, a printer on TCP): the label's DataMatrix is
// the element string scangw inspect accepts, with the serial just
// assigned; scanning it verifies the assignment, another read fails it;
// a reprint is marked and leaves the counter alone; a printer with no
// paper, or gone, gets its jobs later, in order, once; a granted scheme
// issues only from its block.
func TestSerialAssignment(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	printer := zpltest.Start(t)
	lines := openLines(t, "bench-1", "bench-2")
	httpAddr := freeAddr(t)
	path := serialConfig(t, broker.URL(), httpAddr, printer.Addr(), lines)
	topics := wire.TopicsFor("scangw/v1", "ps", "gw-sn")
	events := mosquittotest.Subscribe(t, broker, "central-events", topics.Base+"/events/#")
	heartbeats := mosquittotest.Subscribe(t, broker, "central-hb", topics.Heartbeat)
	cmds := newCommander(t, broker, topics)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg)
	ctx := context.Background()
	now := time.Now()
	serialRE := regexp.MustCompile(fmt.Sprintf(`^ps-%02d%03d-(\d{6})[0-9A-Z*]$`, now.Year()%100, now.YearDay()))
	waitJobs := func(n int) [][]byte {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		jobs, err := printer.WaitJobs(wctx, n)
		if err != nil {
			t.Fatalf("waiting for %d jobs: %v (have %d)", n, err, len(printer.Jobs()))
		}
		return jobs
	}
	waitAssigned := func(n int) []wire.AssignedData {
		t.Helper()
		events.WaitFor(20*time.Second, fmt.Sprintf("%d assigned events", n), func(ms []mosquittotest.Message) bool {
			return countType(ms, wire.AssignedType) >= n
		})
		return assignedEvents(t, events)
	}
	b1, b2 := lines["bench-1"], lines["bench-2"]
	product := "01" + gtinA + "17271231" + "10LOT7" // the lot last: no separator

	// A product read asks for a serial; the label carries it.
	scanAt(t, b1, product, ack)
	as := waitAssigned(1)
	first := as[0]
	m := serialRE.FindStringSubmatch(first.Serial)
	if first.Status != wire.AssignIssued || m == nil || m[1] != "000001" || first.Counter != 1 || first.GTIN != gtinA ||
		first.Lot != "LOT7" || first.Expiry != "271231" || first.Trigger != wire.TriggerRead || first.Printer != "zebra-1" {
		t.Fatalf("first assignment: %+v", first)
	}
	dm := dataMatrix(t, waitJobs(1)[0])
	res := inspect.Inspect(strings.ReplaceAll(dm, "\x1d", `\x1d`))
	if !res.Valid || res.Serial != first.Serial || res.GTIN != gtinA || res.Lot != "LOT7" {
		t.Fatalf("inspect of the label's DataMatrix %q: %+v", dm, res)
	}
	// Scanning the label verifies it.
	scanAt(t, b1, dm, ack)
	if v := waitAssigned(2)[1]; v.Status != wire.AssignVerified || v.Serial != first.Serial || v.Assigned == "" {
		t.Fatalf("verify: %+v", v)
	}

	// The next one; a wrong label scanned fails its verification.
	scanAt(t, b1, product, ack)
	second := waitAssigned(3)[2]
	if second.Counter != 2 {
		t.Fatalf("second assignment: %+v", second)
	}
	waitJobs(2)
	scanAt(t, b1, "NOT-THE-LABEL", nak)
	if v := waitAssigned(4)[3]; v.Status != wire.AssignVerifyFailed || v.Serial != second.Serial || len(v.Reasons) == 0 {
		t.Fatalf("failed verify: %+v", v)
	}

	// A reprint of the last: marked, the counter untouched.
	if r := cmds.do(wire.CmdReprint, "bench-1", `{}`); !r.OK {
		t.Fatalf("reprint: %+v", r.Error)
	}
	rp := waitAssigned(5)[4]
	if rp.Status != wire.AssignReprint || rp.Serial != second.Serial || rp.Assigned == "" {
		t.Fatalf("reprint: %+v", rp)
	}
	job := waitJobs(3)[2]
	if dataMatrix(t, job) == "" || !bytes.Contains(job, []byte("REPRINT")) {
		t.Fatalf("the reprint's label is not marked:\n%s", job)
	}

	// Out of paper: the serial is assigned (it is stored) and its label
	// waits for the paper.
	printer.SetState(zpl.Status{PaperOut: true})
	scanAt(t, b1, product, ack)
	third := waitAssigned(6)[5]
	if third.Counter != 3 {
		t.Fatalf("third assignment: %+v (a reprint must not move the counter)", third)
	}
	waitStatus(t, httpAddr, "the printer out of paper", func(r statusReport) bool {
		return len(r.Printers) == 1 && r.Printers[0].Reason == "paper_out" && r.Printers[0].Waiting == 1
	})
	if n := len(printer.Jobs()); n != 3 {
		t.Fatalf("%d jobs printed with no paper, want the 3 before", n)
	}
	if page := httpGet(t, "http://"+httpAddr+"/"); !strings.Contains(page, "zebra-1 not ready: paper_out") || !strings.Contains(page, "scan the label "+third.Serial) {
		t.Fatalf("the status page does not say the printer is out of paper, or which label to scan:\n%s", page)
	}
	printer.SetState(zpl.Status{})
	scanAt(t, b1, dataMatrix(t, waitJobs(4)[3]), ack) // verified

	// The printer goes away; a serial asked for at the gateway (scangw
	// serial next) is assigned, and printed once it is back.
	printer.Stop()
	var out bytes.Buffer
	if err := serialCmd(ctx, &out, []string{"next", "--config", path, "--station", "bench-1", "--gtin", gtinB}); err != nil {
		t.Fatalf("scangw serial next: %v", err)
	}
	var local wire.AssignedData
	if err := json.Unmarshal(out.Bytes(), &local); err != nil || local.Counter != 4 || local.Trigger != wire.TriggerLocal || local.GTIN != gtinB {
		t.Fatalf("scangw serial next printed %s (%v)", out.Bytes(), err)
	}
	waitStatus(t, httpAddr, "the printer unreachable", func(r statusReport) bool {
		return len(r.Printers) == 1 && !r.Printers[0].Ready && r.Printers[0].Waiting == 1
	})
	printer.Restart()
	jobs := waitJobs(5)
	var printed []string
	for _, j := range jobs {
		jb, err := label.ParseJob(j)
		if err != nil {
			t.Fatal(err)
		}
		printed = append(printed, serialOf(t, jb))
	}
	want := []string{first.Serial, second.Serial, second.Serial, third.Serial, local.Serial}
	if !slices.Equal(printed, want) {
		t.Fatalf("printed %v, want %v (in order, once each, the reprint marked)", printed, want)
	}

	// A granted scheme: nothing to issue until a block is granted, then
	// exactly the block.
	scanAt(t, b2, "NEWSERIAL", nak)
	if r := cmds.do(wire.CmdGrantSerials, "", `{"scheme":"blk","from":1,"to":2}`); !r.OK {
		t.Fatalf("grant_serials: %+v", r.Error)
	}
	if r := cmds.do(wire.CmdGrantSerials, "", `{"scheme":"blk","from":"1","to":2}`); r.OK || r.Error.Code != wire.CodeBadArgs {
		t.Fatalf("grant_serials with a string: %+v, want bad_args", r)
	}
	if b, _ := b2.Send(ctx, "NEWSERIAL", "\r\n", 20*time.Second); b != ack {
		t.Fatalf("NEWSERIAL after the grant: %#x; %s", b, httpGet(t, "http://"+httpAddr+"/status"))
	}
	scanAt(t, b2, "NEWSERIAL", ack)
	scanAt(t, b2, "NEWSERIAL", nak) // the block is used up
	var blk []uint64
	for _, a := range waitAssigned(10) {
		if a.Scheme == "blk" {
			blk = append(blk, a.Counter)
		}
	}
	if !slices.Equal(blk, []uint64{1, 2}) {
		t.Fatalf("blk issued %v, want [1 2]", blk)
	}
	heartbeats.WaitFor(20*time.Second, "a heartbeat with blk used up", func(ms []mosquittotest.Message) bool {
		for _, m := range ms {
			var hb struct{ Data wire.Heartbeat }
			if json.Unmarshal(m.Payload, &hb) == nil && hb.Data.Health != nil {
				for _, s := range hb.Data.Serials {
					if s.Scheme == "blk" && s.Remaining == 0 && s.Low {
						return true
					}
				}
			}
		}
		return false
	})
	checkAll(t, topics, events.Messages())
	checkAll(t, topics, heartbeats.Messages())
}

// serialOf is the (21) of a label's DataMatrix.
func serialOf(t *testing.T, j label.Job) string {
	t.Helper()
	dm := j.DataMatrix()
	if len(dm) != 1 {
		t.Fatalf("%d DataMatrix fields", len(dm))
	}
	res := inspect.Inspect(strings.ReplaceAll(dm[0].Data, "\x1d", `\x1d`))
	if !res.Valid {
		t.Fatalf("the DataMatrix %q is not valid: %+v", dm[0].Data, res.Errors)
	}
	return res.Serial
}

// waitStatus polls the status page until ok holds for it.
func waitStatus(t *testing.T, httpAddr, what string, ok func(statusReport) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r statusReport
		body := httpGet(t, "http://"+httpAddr+"/status")
		if json.Unmarshal([]byte(body), &r) == nil && ok(r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page never showed %s: %s", what, body)
		}
		time.Sleep(20 * time.Millisecond) // polling the status page
	}
}

// TestSerialsUniqueUnderKills: two stations assign serials from one
// scheme, whose block the central system granted, while the gateway is
// killed with SIGKILL again and again, at random points. No serial is
// issued twice (events at the broker, labels at the printer), the
// counter has no gap (the counter and the event commit together, so a
// kill leaves neither or both), every read that got the good beep has
// its serial, and nothing beyond the block is issued.
func TestSerialsUniqueUnderKills(t *testing.T) {
	const (
		kills = 200
		block = 5000
	)
	bin := buildScangw(t)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	printer := zpltest.Start(t)
	lines := openLines(t, "st-a", "st-b")
	httpAddr := freeAddr(t)
	scanner := func(id string) string {
		return fmt.Sprintf(`[{id: %s-h, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}]`, id, lines[id].Path())
	}
	cfg := fmt.Sprintf(`
gateway: {id: gw-k, site: pk}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 200ms}
http:    {listen: %q}
log:     {level: warn}
serials: [{name: u, template: "U{seq:7}{check:luhn}", granted: true}]
printers: [{id: p1, addr: %q, retry: 20ms}]
stations:
  - {id: st-a, mode: assign, assign: {scheme: u, printer: p1}, scanners: %s}
  - {id: st-b, mode: assign, assign: {scheme: u, printer: p1}, scanners: %s}
`, t.TempDir(), broker.URL(), httpAddr, printer.Addr(), scanner("st-a"), scanner("st-b"))
	path := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	topics := wire.TopicsFor("scangw/v1", "pk", "gw-k")
	events := mosquittotest.Subscribe(t, broker, "central-events", topics.Base+"/events/#")
	cmds := newCommander(t, broker, topics)
	d := crashNewDaemon(t, bin, path, filepath.Join(t.TempDir(), "scangw.log"))
	ready := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for httpGetQuiet("http://"+httpAddr+"/readyz") == "" {
			if time.Now().After(deadline) {
				t.Fatal("the gateway never became ready")
			}
			time.Sleep(5 * time.Millisecond) // polling the restarted process
		}
	}
	d.start()
	ready()
	if r := cmds.doUntilAnswered(wire.CmdGrantSerials, "", fmt.Sprintf(`{"scheme":"u","from":1,"to":%d}`, block)); !r.OK {
		t.Fatalf("grant_serials: %+v", r.Error)
	}

	// The senders type product reads one at a time, as operators do; the
	// killer kills the gateway at random moments, interrupts the reads in
	// flight, and starts it again.
	var (
		gen    sync.RWMutex // held for reading by a read in flight
		mu     sync.Mutex
		acked  int
		naks   int
		done   = make(chan struct{})
		ctx    = context.Background()
		failed = make(chan error, 2)
	)
	send := func(l *serialsim.Pty) {
		for {
			select {
			case <-done:
				return
			default:
			}
			gen.RLock()
			b, err := l.Send(ctx, "01"+gtinA+"10L1", "\r\n", 20*time.Second)
			gen.RUnlock()
			mu.Lock()
			switch {
			case err == nil && b == ack:
				acked++
			case err == nil && b == nak:
				naks++ // the block is used up
			case err != nil && !errors.Is(err, serialsim.ErrNoFeedback):
				mu.Unlock()
				failed <- err
				return
			}
			stop := naks >= 4
			mu.Unlock()
			if stop {
				return
			}
			l.Drain()
		}
	}
	var wg sync.WaitGroup
	for _, id := range []string{"st-a", "st-b"} {
		wg.Add(1)
		go func() { defer wg.Done(); send(lines[id]) }()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // when to pull the plug: the point of the test
		d.kill9()
		for _, l := range lines {
			l.Master().SetReadDeadline(time.Now()) // the answer will never come
		}
		gen.Lock()
		d.start()
		ready()
		gen.Unlock()
		mu.Lock()
		over := naks > 0
		mu.Unlock()
		if over {
			break
		}
	}
	wg.Wait()
	close(done)
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}

	// Every serial the broker has: the events of each distinct id.
	var got []wire.AssignedData
	events.WaitFor(60*time.Second, "an assigned event for every good beep", func(ms []mosquittotest.Message) bool {
		got = uniqueAssigned(t, ms)
		return len(got) >= acked
	})
	seen := map[string]bool{}
	counters := map[uint64]bool{}
	for _, a := range got {
		if seen[a.Serial] {
			t.Fatalf("serial %s issued twice", a.Serial)
		}
		seen[a.Serial] = true
		if a.Counter < 1 || a.Counter > block {
			t.Fatalf("serial %s from counter %d, outside the block 1..%d", a.Serial, a.Counter, block)
		}
		counters[a.Counter] = true
	}
	for c := uint64(1); c <= uint64(len(got)); c++ {
		if !counters[c] {
			t.Fatalf("counter %d missing among %d serials: a gap", c, len(got))
		}
	}
	// The labels: none twice, in counter order; those not printed are the
	// ones a kill caught in the middle of sending (in doubt).
	var inDoubt int
	waitStatus(t, httpAddr, "every label printed or in doubt", func(r statusReport) bool {
		if len(r.Printers) != 1 || r.Printers[0].Waiting != 0 {
			return false
		}
		inDoubt = r.Printers[0].InDoubt
		return true
	})
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var printed []uint64
	for _, j := range printer.Jobs() {
		jb, err := label.ParseJob(j)
		if err != nil {
			t.Fatal(err)
		}
		c, err := strconv.ParseUint(serialOf(t, jb)[1:8], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		printed = append(printed, c)
	}
	for i := 1; i < len(printed); i++ {
		if printed[i] <= printed[i-1] {
			t.Fatalf("label of counter %d printed after %d: twice or out of order", printed[i], printed[i-1])
		}
	}
	t.Logf("%d kills, %d good beeps, %d serials issued (block %d), %d labels printed, %d in doubt", kills, acked, len(got), block, len(printed), inDoubt)
	if len(got) != block {
		t.Fatalf("%d serials issued, want the whole block of %d before the refusals", len(got), block)
	}
	// Printed labels are issued serials (each once: the order check);
	// every serial without a label is one a kill left in doubt. A job in
	// doubt may have printed too: the kill came after the printer took it.
	for _, c := range printed {
		if !counters[c] {
			t.Fatalf("a label of counter %d, which was never issued", c)
		}
	}
	if missing := len(got) - len(printed); missing > inDoubt {
		t.Fatalf("%d serials have no label and only %d jobs are in doubt: a label lost", missing, inDoubt)
	}
}

// uniqueAssigned are the assigned events of ms, each id once.
func uniqueAssigned(t *testing.T, ms []mosquittotest.Message) []wire.AssignedData {
	t.Helper()
	ids := map[string]bool{}
	var out []wire.AssignedData
	for _, m := range ms {
		var e event
		if json.Unmarshal(m.Payload, &e) != nil || e.Type != wire.AssignedType || ids[e.ID] {
			continue
		}
		ids[e.ID] = true
		var d wire.AssignedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
