package assign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/device/zpl/zpltest"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/gs1"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/wire"
)

// jobKey0 is the state key of the gateway's first print job on p1.
const jobKey0 = "print/p1/00000000000000000000"

func withPrinter(p assign.Printer) func(*assign.Options) {
	return func(o *assign.Options) { o.Printers = map[string]assign.Printer{"p1": p} }
}

// checkLabel holds a printed job to the serial's label: the GS1
// DataMatrix carries (01) and (21) as a scanner would read them, and the
// text says REPRINT exactly on a reprint.
func checkLabel(t *testing.T, job []byte, serial string, reprint bool) {
	t.Helper()
	j, err := label.ParseJob(job)
	if err != nil {
		t.Fatalf("ParseJob: %v\n%s", err, job)
	}
	dm := j.DataMatrix()
	if len(dm) != 1 || !dm[0].GS1 {
		t.Fatalf("DataMatrix fields %+v, want one GS1 DataMatrix", dm)
	}
	res, err := gs1.Parse(dm[0].Data)
	if err != nil {
		t.Fatalf("the DataMatrix data %q does not parse: %v", dm[0].Data, err)
	}
	if got, _ := res.Lookup("21"); got != serial {
		t.Errorf("DataMatrix (21) %q, want %q", got, serial)
	}
	if got, _ := res.Lookup("01"); got != gtin {
		t.Errorf("DataMatrix (01) %q, want %q", got, gtin)
	}
	text := strings.Join(j.Text(), "|")
	if !strings.Contains(text, serial) || strings.Contains(text, label.ReprintMark) != reprint {
		t.Errorf("label text %q: want the serial %s, reprint mark %v", text, serial, reprint)
	}
}

func checkLabels(t *testing.T, jobs [][]byte, serials []string, reprints ...bool) {
	t.Helper()
	if len(jobs) != len(serials) {
		t.Fatalf("%d jobs printed, want %d", len(jobs), len(serials))
	}
	for i, j := range jobs {
		checkLabel(t, j, serials[i], i < len(reprints) && reprints[i])
	}
}

// printed waits for the printer to have n jobs and returns them.
func printed(t *testing.T, fp *zpltest.Printer, n int) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	jobs, err := fp.WaitJobs(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func serialsOf(ps []*assign.Prepared) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Serial)
	}
	return out
}

func TestJobsPrintOnceInOrder(t *testing.T) {
	fp, zp := fakePrinter(t)
	r := newRig(t, t.TempDir(), withPrinter(zp))
	r.run()
	var ps []*assign.Prepared
	for range 5 {
		ps = append(ps, r.assign(request("p1")))
	}
	r.rec.wait(t, 5, "printed", is("printed"))
	checkLabels(t, printed(t, fp, len(ps)), serialsOf(ps))
	if n := r.rec.count(is("printed")); n != len(ps) {
		t.Errorf("%d sends reported printed, want %d", n, len(ps))
	}
	if keys := r.keys("print/p1/"); len(keys) != 0 {
		t.Errorf("jobs left in the store: %v", keys)
	}
	if got := r.a.Printers(); !slices.Equal(got, []wire.PrinterStatus{{ID: "p1", Ready: true}}) {
		t.Errorf("Printers() = %+v", got)
	}
	r.metrics(`
# HELP scangw_printer_jobs_total Print jobs finished, by result: printed, or in_doubt (cut off mid-send; not sent again, re-print to repair).
# TYPE scangw_printer_jobs_total counter
scangw_printer_jobs_total{printer="p1",result="in_doubt"} 0
scangw_printer_jobs_total{printer="p1",result="printed"} 5
# HELP scangw_printer_jobs_waiting Print jobs stored and not yet printed.
# TYPE scangw_printer_jobs_waiting gauge
scangw_printer_jobs_waiting{printer="p1"} 0
# HELP scangw_printer_ready 1 when the printer's last status check or send found it able to print.
# TYPE scangw_printer_ready gauge
scangw_printer_ready{printer="p1"} 1
`, "scangw_printer_jobs_total", "scangw_printer_jobs_waiting", "scangw_printer_ready")
}

func TestPrinterOutage(t *testing.T) {
	fp, zp := fakePrinter(t)
	fp.Stop()
	r := newRig(t, t.TempDir(), withPrinter(zp))
	var ps []*assign.Prepared
	for range 3 {
		ps = append(ps, r.assign(request("p1")))
	}
	r.run()
	r.rec.wait(t, 2, "job 0 held as unreachable", job(0, "unreachable"))
	if got := r.a.Printers(); !slices.Equal(got, []wire.PrinterStatus{{ID: "p1", Reason: "unreachable", Waiting: 3}}) {
		t.Errorf("Printers() = %+v", got)
	}
	r.metrics(`
# HELP scangw_printer_not_ready 1 for the reason a printer is not sent to: paper_out, head_open, paused, unreachable, no_status …
# TYPE scangw_printer_not_ready gauge
scangw_printer_not_ready{printer="p1",reason="unreachable"} 1
# HELP scangw_printer_ready 1 when the printer's last status check or send found it able to print.
# TYPE scangw_printer_ready gauge
scangw_printer_ready{printer="p1"} 0
# HELP scangw_printer_jobs_waiting Print jobs stored and not yet printed.
# TYPE scangw_printer_jobs_waiting gauge
scangw_printer_jobs_waiting{printer="p1"} 3
`, "scangw_printer_not_ready", "scangw_printer_ready", "scangw_printer_jobs_waiting")
	if n := strings.Count(r.logs.String(), "printer not ready"); n != 1 {
		t.Errorf("not-ready logged %d times, want once per change:\n%s", n, r.logs)
	}

	fp.Restart()
	r.rec.wait(t, 3, "printed", is("printed"))
	checkLabels(t, printed(t, fp, len(ps)), serialsOf(ps))
	if n := r.rec.count(is("printed")); n != len(ps) {
		t.Errorf("%d sends reported printed, want %d", n, len(ps))
	}
	r.metrics(`
# HELP scangw_printer_ready 1 when the printer's last status check or send found it able to print.
# TYPE scangw_printer_ready gauge
scangw_printer_ready{printer="p1"} 1
`, "scangw_printer_not_ready", "scangw_printer_ready")
}

// noStatus is a network printer whose status is not asked, so that its
// jobs meet a printer that is off at the send itself.
type noStatus struct{ *zpl.Printer }

func (noStatus) Status(context.Context) (zpl.Status, error) {
	return zpl.Status{}, errors.ErrUnsupported
}

func TestPrinterOffAtSendGetsTheJobLater(t *testing.T) {
	fp, zp := fakePrinter(t)
	fp.Stop()
	r := newRig(t, t.TempDir(), withPrinter(noStatus{zp}))
	ps := []*assign.Prepared{r.assign(request("p1")), r.assign(request("p1"))}
	r.run()
	r.rec.wait(t, 2, "job 0 not sent", job(0, "unreachable"))
	if d := r.a.InDoubt(); len(d) != 0 {
		t.Fatalf("a job whose connection was refused is in doubt: %+v", d)
	}
	fp.Restart()
	r.rec.wait(t, 2, "printed", is("printed"))
	checkLabels(t, printed(t, fp, len(ps)), serialsOf(ps))
}

func TestNotReadyPrinterIsNotSentTo(t *testing.T) {
	for _, tc := range []struct {
		state  zpl.Status
		reason string
	}{
		{zpl.Status{PaperOut: true, Paused: true}, "paper_out"},
		{zpl.Status{HeadOpen: true}, "head_open"},
		{zpl.Status{Paused: true}, "paused"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			fp, zp := fakePrinter(t)
			fp.SetState(tc.state)
			r := newRig(t, t.TempDir(), withPrinter(zp))
			p := r.assign(request("p1"))
			r.run()
			r.rec.wait(t, 2, "held", job(0, tc.reason))
			if got := r.a.Printers(); !slices.Equal(got, []wire.PrinterStatus{{ID: "p1", Reason: tc.reason, Waiting: 1}}) {
				t.Errorf("Printers() = %+v", got)
			}
			if n := len(fp.Jobs()); n != 0 {
				t.Fatalf("%d jobs sent to a printer that is not ready", n)
			}
			fp.SetState(zpl.Status{})
			r.rec.wait(t, 1, "printed", is("printed"))
			checkLabels(t, printed(t, fp, 1), []string{p.Serial})
		})
	}
}

func TestPrinterFallenSilentIsHeld(t *testing.T) {
	fp, zp := fakePrinter(t)
	r := newRig(t, t.TempDir(), withPrinter(zp))
	r.run()
	first := r.assign(request("p1"))
	printed(t, fp, 1)
	fp.SetSilent(true) // as Zebra firmware does with the head open
	second := r.assign(request("p1"))
	r.rec.wait(t, 1, "held", job(1, "no_status"))
	if n := len(fp.Jobs()); n != 1 {
		t.Fatalf("%d jobs, want only the first while the printer is silent", n)
	}
	fp.SetSilent(false)
	r.rec.wait(t, 2, "printed", is("printed"))
	checkLabels(t, printed(t, fp, 2), []string{first.Serial, second.Serial})
}

// A USB printer is a device file with no status; one not plugged in is
// a file that cannot be opened, and its jobs wait.
func TestUSBPrinterComesBack(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "lp0")
	zp, err := zpl.New(zpl.Config{Device: dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, t.TempDir(), withPrinter(zp))
	ps := []*assign.Prepared{r.assign(request("p1")), r.assign(request("p1"))}
	r.run()
	r.rec.wait(t, 1, "held", job(0, "unreachable"))
	if st := r.a.Printers()[0]; st.Ready || st.Reason != "unreachable" || st.Waiting != 2 {
		t.Errorf("unplugged: %+v", st)
	}

	// Plugged in: a FIFO the test reads, held open for reading and
	// writing so that it never reads EOF between jobs.
	if err := syscall.Mkfifo(dev, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	jobs := make(chan []byte, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var acc []byte
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			acc = append(acc, b[:n]...)
			for {
				i := bytes.Index(acc, []byte("^XZ"))
				if i < 0 {
					break
				}
				jobs <- bytes.Clone(acc[:i+3])
				acc = acc[i+3:]
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	r.rec.wait(t, 2, "printed", is("printed"))
	var got [][]byte
	for range 2 {
		select {
		case j := <-jobs:
			got = append(got, j)
		case <-time.After(10 * time.Second):
			t.Fatal("the printed jobs did not come out of the device")
		}
	}
	checkLabels(t, got, serialsOf(ps))
	if st := r.a.Printers()[0]; !st.Ready || st.Waiting != 0 {
		t.Errorf("plugged in: %+v", st)
	}
}

// funcPrinter is a printer without status, as a USB one, whose sends the
// test scripts: send gets the number of the call.
type funcPrinter struct {
	send  func(call int, job []byte) error
	mu    sync.Mutex
	calls int
}

func (p *funcPrinter) Send(_ context.Context, job []byte) error {
	p.mu.Lock()
	n := p.calls
	p.calls++
	p.mu.Unlock()
	if p.send == nil {
		return nil
	}
	return p.send(n, job)
}

func (p *funcPrinter) Status(context.Context) (zpl.Status, error) {
	return zpl.Status{}, fmt.Errorf("no status here: %w", errors.ErrUnsupported)
}

func TestSendOutcomes(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	fpr := &funcPrinter{send: func(call int, job []byte) error {
		switch call {
		case 0: // job 0: printed, slowly
			entered <- struct{}{}
			<-release
			return nil
		case 1: // job 1: cut off after bytes left
			return fmt.Errorf("zpl: write (10 of 900 bytes) 10.0.0.9:9100: %w: %w", zpl.ErrUnreachable,
				&net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET})
		case 2: // job 2: the printer cannot be reached, then can
			return fmt.Errorf("zpl: dial 10.0.0.9:9100: %w: %w", zpl.ErrUnreachable,
				&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		}
		return nil
	}}
	r := newRig(t, t.TempDir(), withPrinter(fpr))
	var ps []*assign.Prepared
	for range 4 {
		ps = append(ps, r.assign(request("p1")))
	}
	r.run()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("job 0 was not sent")
	}
	var marked assign.Job
	if b, err := r.buf.LoadState(jobKey0); err != nil || json.Unmarshal(b, &marked) != nil || !marked.Sending {
		t.Errorf("during the send the job is %+v (%v), want it marked sending", marked, err)
	}
	close(release)
	r.rec.wait(t, 1, "job 3 printed", job(3, "printed"))

	want := []result{{"p1", 0, "printed"}, {"p1", 1, "in_doubt"}, {"p1", 2, "unreachable"}, {"p1", 2, "printed"}, {"p1", 3, "printed"}}
	if got := r.rec.snapshot(); !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	fpr.mu.Lock()
	calls := fpr.calls
	fpr.mu.Unlock()
	if calls != 5 {
		t.Errorf("%d sends, want 5: job 1 once, job 2 twice", calls)
	}
	doubt := r.a.InDoubt()
	if len(doubt) != 1 || doubt[0].N != 1 || doubt[0].Serial != ps[1].Serial || doubt[0].Event != ps[1].EventID {
		t.Errorf("InDoubt() = %+v, want job 1 of %s", doubt, ps[1].Serial)
	}
	if got := r.keys("print/"); !slices.Equal(got, []string{"print/doubt/p1/00000000000000000001", "print/next"}) {
		t.Errorf("print keys %v", got)
	}
	if st := r.a.Printers()[0]; st.InDoubt != 1 || st.Waiting != 0 || !st.Ready {
		t.Errorf("Printers() = %+v", st)
	}
	r.metrics(`
# HELP scangw_printer_jobs_total Print jobs finished, by result: printed, or in_doubt (cut off mid-send; not sent again, re-print to repair).
# TYPE scangw_printer_jobs_total counter
scangw_printer_jobs_total{printer="p1",result="in_doubt"} 1
scangw_printer_jobs_total{printer="p1",result="printed"} 3
`, "scangw_printer_jobs_total")
}

func TestReopenKeepsCountersAndJobs(t *testing.T) {
	dir := t.TempDir()
	fp, zp := fakePrinter(t)
	r := newRig(t, dir, withPrinter(zp))
	var ps []*assign.Prepared
	for range 3 {
		ps = append(ps, r.assign(request("p1")))
	}
	r.stop() // before any job was sent

	r = newRig(t, dir, withPrinter(zp))
	if st := r.a.Printers()[0]; st.Waiting != 3 {
		t.Errorf("after a reopen: %+v, want 3 waiting", st)
	}
	if st := r.a.Schemes()[0]; st.Remaining != 999996 {
		t.Errorf("after a reopen: %+v", st)
	}
	p := r.assign(request("p1"))
	if p.Counter != 4 {
		t.Errorf("counter %d after a reopen, want 4", p.Counter)
	}
	ps = append(ps, p)
	r.run()
	r.rec.wait(t, 4, "printed", is("printed"))
	checkLabels(t, printed(t, fp, len(ps)), serialsOf(ps))
}

func TestJobSendingAtStartIsInDoubt(t *testing.T) {
	dir := t.TempDir()
	fp, zp := fakePrinter(t)
	r := newRig(t, dir, withPrinter(zp))
	ps := []*assign.Prepared{r.assign(request("p1")), r.assign(request("p1"))}
	// The gateway died during the first send: the job is marked.
	b, err := r.buf.LoadState(jobKey0)
	if err != nil {
		t.Fatal(err)
	}
	var j assign.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	j.Sending = true
	if b, err = json.Marshal(j); err != nil {
		t.Fatal(err)
	}
	if err := r.buf.SaveState(jobKey0, b); err != nil {
		t.Fatal(err)
	}
	r.stop()

	r = newRig(t, dir, withPrinter(zp))
	if n := r.rec.count(job(0, "in_doubt")); n != 1 {
		t.Errorf("job 0 reported in doubt %d times by New, want once", n)
	}
	if d := r.a.InDoubt(); len(d) != 1 || d[0].Serial != ps[0].Serial {
		t.Fatalf("InDoubt() = %+v, want the job of %s", d, ps[0].Serial)
	}
	if got := r.keys("print/"); !slices.Equal(got, []string{"print/doubt/p1/00000000000000000000", "print/next", "print/p1/00000000000000000001"}) {
		t.Errorf("print keys %v", got)
	}
	if !strings.Contains(r.logs.String(), "serial="+ps[0].Serial) {
		t.Errorf("the in-doubt log line does not name the serial:\n%s", r.logs)
	}
	r.run()
	r.rec.wait(t, 1, "job 1 printed", job(1, "printed"))
	checkLabels(t, printed(t, fp, 1), []string{ps[1].Serial})

	// The operator re-prints the serial in doubt.
	rp, err := r.a.PrepareReprint(request("p1"), ps[0].Serial)
	if err != nil {
		t.Fatal(err)
	}
	r.commit(rp)
	r.rec.wait(t, 2, "printed", is("printed"))
	checkLabels(t, printed(t, fp, 2), []string{ps[1].Serial, ps[0].Serial}, false, true)
	if d := r.a.InDoubt(); len(d) != 0 {
		t.Errorf("InDoubt() = %+v after the re-print", d)
	}
	if got := r.keys("print/doubt/"); len(got) != 0 {
		t.Errorf("doubt keys %v after the re-print", got)
	}
}

func TestReprint(t *testing.T) {
	fp, zp := fakePrinter(t)
	r := newRig(t, t.TempDir(), withPrinter(zp))
	r.run()
	ps := []*assign.Prepared{r.assign(request("p1")), r.assign(request("p1"))}

	last, err := r.a.PrepareReprint(request("p1"), "")
	if err != nil {
		t.Fatal(err)
	}
	r.commit(last)
	given, err := r.a.PrepareReprint(request("p1"), ps[0].Serial)
	if err != nil {
		t.Fatal(err)
	}
	r.commit(given)
	for i, tc := range []struct {
		got  *assign.Prepared
		want *assign.Prepared
	}{{last, ps[1]}, {given, ps[0]}} {
		d := tc.got.Data
		if tc.got.Serial != tc.want.Serial || d.Status != wire.AssignReprint || d.Assigned != tc.want.EventID ||
			d.Counter != tc.want.Counter || d.GTIN != gtin || tc.got.EventID == tc.want.EventID {
			t.Errorf("reprint %d: %s %+v, want of %s (event %s)", i, tc.got.Serial, d, tc.want.Serial, tc.want.EventID)
		}
	}
	r.rec.wait(t, 4, "printed", is("printed"))
	checkLabels(t, printed(t, fp, 4), []string{ps[0].Serial, ps[1].Serial, ps[1].Serial, ps[0].Serial}, false, false, true, true)
	if c := r.counter("unit"); c.Next != 3 {
		t.Errorf("counter %+v after re-prints, want next 3", c)
	}
	evs, _ := r.events()
	if len(evs) != 4 || evs[2].Data.Status != wire.AssignReprint || evs[3].Data.Status != wire.AssignReprint {
		t.Errorf("events %+v", evs)
	}

	noMark, err := label.Parse("^XA^FO10,10^BXN,5,200,,,,_^FD{gs1_data}^FS^XZ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    func() assign.Request
		serial string
	}{
		{"unknown serial", func() assign.Request { return request("p1") }, "gw1-999999"},
		{"station without serials", func() assign.Request { q := request("p1"); q.Station = "bench-9"; return q }, ""},
		{"serial without scheme", func() assign.Request { q := request("p1"); q.Scheme = ""; return q }, ps[0].Serial},
		{"label without {reprint}", func() assign.Request { q := request("p1"); q.Label = noMark; return q }, ""},
	} {
		_, err := r.a.PrepareReprint(tc.req(), tc.serial)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeBadArgs {
			t.Errorf("%s: %v, want bad_args", tc.name, err)
		}
	}
	if p := r.assign(request("")); p.Counter != 3 {
		t.Errorf("counter %d after the refused re-prints, want 3", p.Counter)
	}
}
