package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

const (
	// crashKills is how many times the daemon is killed with SIGKILL while
	// scans stream in and the uplink drains.
	crashKills = 25
	// crashScanners scanners feed one station, so that their appends share
	// commits (group commit) and a kill can catch a commit of several.
	crashScanners = 2
	// A streaming run is killed uniformly between crashKillMin and
	// crashKillMax after its first acknowledged scan.
	crashKillMin = 20 * time.Millisecond
	crashKillMax = 300 * time.Millisecond
	// One run in crashStartupKillOneIn, drawn at random, is instead killed
	// within crashStartupKillMax of its exec. The daemon acknowledges its
	// first scan some 15-25 ms after exec, so these kills land in Badger's
	// open and recovery, the ports' open, the MQTT connect or the first
	// commits. They come on top of crashKills.
	crashStartupKillOneIn = 5
	crashStartupKillMax   = 30 * time.Millisecond

	// crashFeedbackTimeout is the scanner's wait for its ACK. It is longer
	// than crashKillMax, so a scanner never gives up on a live daemon: only
	// the kill ends its wait.
	crashFeedbackTimeout = 1500 * time.Millisecond
	// crashStartTimeout bounds the first scan of a run, which waits in the
	// pty while the daemon starts and recovers its buffer.
	crashStartTimeout = 20 * time.Second
	// crashFinalScans new codes per scanner go to the last daemon, which is
	// not killed, after the retransmissions.
	crashFinalScans           = 10
	crashFinalFeedbackTimeout = 10 * time.Second
	crashDrainTimeout         = 60 * time.Second
	crashStopTimeout          = 10 * time.Second

	crashPrefix  = "crash/v1"
	crashSite    = "plant-c"
	crashGateway = "gw-crash"
	crashStation = "dock-9"
	// crashMarker is the very last scan: once it reached the broker, so did
	// every scan stored before it (the uplink publishes in seq order).
	crashMarker = "SN-final-marker"

	crashACK = 0x06
)

var crashSeed = flag.Uint64("crash.seed", 0, "seed of TestCrashKillNineLosesNothing's kill timing (0: from the clock)")

// TestCrashKillNineLosesNothing is DESIGN.md's "nothing acknowledged is
// lost" under kill -9: the real binary, a real Mosquitto, scanners in
// ACK/NAK mode on real ptys. The daemon is killed again and again at random
// points of appending and acknowledging, restarted on the same buffer, and
// finally left to drain. Every scan that got an ACK must reach the broker;
// seq must be gap-free 1..N in one epoch and first arrive in order.
func TestCrashKillNineLosesNothing(t *testing.T) {
	started := time.Now()
	bin := buildScangw(t)
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	broker := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, broker, "central-crash", crashPrefix+"/#")

	dir := t.TempDir()
	var scanners []*crashScanner
	for i := range crashScanners {
		line, err := serialsim.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { line.Close() })
		scanners = append(scanners, &crashScanner{id: fmt.Sprintf("scanner-%d", i), idx: i, line: ptyLine{line}})
	}
	// And a fixed reader over TCP, which every daemon dials anew.
	reader := newTCPLine(t)
	scanners = append(scanners, &crashScanner{id: "reader-tcp", idx: crashScanners, line: reader})
	config := crashWriteConfig(t, dir, broker.URL(), scanners)

	var (
		kills, startupKills int
		atKill              []int // messages received when each kill happened
	)
	for run := 1; kills < crashKills; run++ {
		startup := rng.IntN(crashStartupKillOneIn) == 0
		var delay time.Duration
		if startup {
			delay = time.Duration(rng.Int64N(int64(crashStartupKillMax)))
			startupKills++
		} else {
			delay = crashKillMin + time.Duration(rng.Int64N(int64(crashKillMax-crashKillMin)+1))
			kills++
		}
		ackedBefore := crashAckedCount(scanners)
		logPath := filepath.Join(dir, fmt.Sprintf("run-%02d.log", run))
		firstAck := crashKillRun(t, crashNewDaemon(t, bin, config, logPath), scanners, run, startup, delay)
		atKill = append(atKill, sub.Count())

		awaiting := 0
		for _, s := range scanners {
			if s.pending != "" {
				awaiting++
			}
		}
		when := fmt.Sprintf("%3dms after its first ACK", delay.Milliseconds())
		if startup {
			when = fmt.Sprintf("%3dms after exec      ", delay.Milliseconds())
		}
		first := "no ACK"
		if firstAck > 0 {
			first = fmt.Sprintf("first ACK %dms after exec", firstAck.Milliseconds())
		}
		t.Logf("run %2d: killed %s; %s, %3d scans acknowledged, %d awaiting their ACK at the kill",
			run, when, first, crashAckedCount(scanners)-ackedBefore, awaiting)
	}

	// The last daemon is not killed: the scanners retransmit what never got
	// its ACK, type a few more, and then the marker goes last, alone.
	final := len(atKill) + 1
	for _, s := range scanners {
		if err := s.line.Flush(); err != nil {
			t.Fatalf("flush %s: %v", s.line.Path(), err)
		}
	}
	d := crashNewDaemon(t, bin, config, filepath.Join(dir, "run-final.log"))
	d.start()
	crashStreamToEnd(t, d, scanners, final, crashFinalScans)
	scanners[0].pending, scanners[0].pendingSent = crashMarker, false
	crashStreamToEnd(t, d, scanners[:1], final, 0)

	acked := map[string]bool{}
	sentBy := map[string]string{} // code -> scanner id
	transmissions, retransmissions, drained := 0, 0, 0
	for _, s := range scanners {
		for _, c := range s.acked {
			acked[c] = true
		}
		for _, c := range s.codes {
			sentBy[c] = s.id
		}
		transmissions += s.sends
		retransmissions += s.retransmits
		drained += s.drained
	}
	sentBy[crashMarker] = scanners[0].id
	if len(acked) != len(sentBy) {
		t.Fatalf("%d codes typed but %d acknowledged by the end: the final daemon left some unanswered", len(sentBy), len(acked))
	}

	missing := maps.Clone(acked)
	t.Cleanup(func() {
		if t.Failed() && len(missing) > 0 {
			t.Logf("acknowledged but never received (%d): %v", len(missing), crashFirst(slices.Sorted(maps.Keys(missing)), 20))
			logs, _ := filepath.Glob(filepath.Join(dir, "run-*.log"))
			for _, l := range logs {
				if b, _ := os.ReadFile(l); len(b) > 0 {
					t.Log(crashLogTail(l))
				}
			}
		}
	})
	scanTopic := fmt.Sprintf("%s/%s/%s/scans/%s", crashPrefix, crashSite, crashGateway, crashStation)
	// The marker was stored last and the uplink publishes in seq order, so
	// once it arrived nothing older is still on its way: stop waiting, and
	// let the checks below name whatever is missing.
	cursor, markerSeen := 0, false
	sub.WaitFor(crashDrainTimeout, fmt.Sprintf("all %d acknowledged scans", len(acked)), func(msgs []mosquittotest.Message) bool {
		for ; cursor < len(msgs); cursor++ {
			if msgs[cursor].Topic != scanTopic {
				continue
			}
			var ev crashEvent
			if json.Unmarshal(msgs[cursor].Payload, &ev) == nil {
				delete(missing, ev.Data.Raw)
				markerSeen = markerSeen || ev.Data.Raw == crashMarker
			}
		}
		return len(missing) == 0 || markerSeen
	})
	if err := d.stop(); err != nil {
		t.Errorf("final daemon did not stop cleanly on SIGTERM: %v\n%s", err, crashLogTail(d.logPath))
	}

	st := crashCheckEvents(t, sub.Messages(), scanTopic, sentBy, atKill)
	t.Logf("%d kills while streaming + %d during start-up in %v; %d transmissions, %d of them retransmissions, %d stale ACKs drained",
		kills, startupKills, time.Since(started).Round(time.Millisecond), transmissions, retransmissions, drained)
	t.Logf("%d scans acknowledged; %d scan events received, %d distinct (seq 1..%d, one epoch), %d duplicates: "+
		"%d resent by the uplink (after %d of the %d kills), %d stored again because a kill ate their ACK",
		len(acked), st.received, st.distinct, st.lastSeq, st.received-len(acked),
		st.received-st.distinct, st.killsWithResends, len(atKill), st.storedAgain)
	if lines := crashLogLines(t, dir); len(lines) > 0 {
		t.Logf("the daemons logged %d lines at warn or above, first ones:\n%s", len(lines), strings.Join(crashFirst(lines, 10), "\n"))
	}
	if retransmissions == 0 {
		t.Errorf("no kill interrupted a scan awaiting its ACK: the kills did not hit the streaming")
	}
}

// crashKillRun runs the daemon once with the scanners streaming into it and
// kills it with SIGKILL: delay after its start if startup is set, else
// delay after its first acknowledged scan. The random delay is the fault
// injection, not synchronisation. It returns how long after the start the
// first scan was acknowledged, 0 if none was.
func crashKillRun(t *testing.T, d *crashDaemon, scanners []*crashScanner, run int, startup bool, delay time.Duration) (firstAck time.Duration) {
	t.Helper()
	// The killed daemon may have left part of a scan unread in the pty; the
	// next one must not read it as well as the retransmission. It is not
	// running yet, so nothing it reads can be lost to the flush.
	for _, s := range scanners {
		if err := s.line.Flush(); err != nil {
			t.Fatalf("flush %s: %v", s.line.Path(), err)
		}
	}
	d.start()
	execed := time.Now()
	first := make(chan struct{})
	var once sync.Once
	var sinceExec time.Duration // written before first is closed
	st := crashStartStream(scanners, run, -1, crashFeedbackTimeout, func() {
		once.Do(func() {
			sinceExec = time.Since(execed)
			close(first)
		})
	})
	defer st.stop()

	if !startup {
		timer := time.NewTimer(crashStartTimeout)
		defer timer.Stop()
	waitAck:
		for {
			select {
			case <-first:
				break waitAck
			case <-d.done:
				t.Fatalf("run %d: daemon exited before acknowledging a scan: %v\n%s", run, d.err, crashLogTail(d.logPath))
			case <-st.failed:
				st.stop()
				t.Fatalf("run %d: %v\n%s", run, st.err(), crashLogTail(d.logPath))
			case <-timer.C:
				t.Fatalf("run %d: no scan acknowledged within %v of the daemon's start\n%s", run, crashStartTimeout, crashLogTail(d.logPath))
			}
		}
	}
	kill := time.NewTimer(delay)
	defer kill.Stop()
waitKill:
	for {
		select {
		case <-kill.C:
			break waitKill
		case <-d.done:
			t.Fatalf("run %d: daemon exited by itself: %v\n%s", run, d.err, crashLogTail(d.logPath))
		case <-st.failed:
			st.stop()
			t.Fatalf("run %d: %v\n%s", run, st.err(), crashLogTail(d.logPath))
		}
	}
	d.kill9()
	if err := st.stop(); err != nil {
		t.Fatalf("run %d: %v\n%s", run, err, crashLogTail(d.logPath))
	}
	select {
	case <-first:
		return sinceExec
	default:
		return 0
	}
}

// crashStreamToEnd lets scanners send what they have pending and newCodes
// new codes each to d, which is not killed, and waits until all were
// acknowledged.
func crashStreamToEnd(t *testing.T, d *crashDaemon, scanners []*crashScanner, run, newCodes int) {
	t.Helper()
	st := crashStartStream(scanners, run, newCodes, crashFinalFeedbackTimeout, nil)
	defer st.stop()
	timer := time.NewTimer(crashDrainTimeout)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case <-st.done:
			done = true
		case <-d.done:
			t.Fatalf("final daemon exited: %v\n%s", d.err, crashLogTail(d.logPath))
		case <-timer.C:
			t.Fatalf("scanners not done within %v\n%s", crashDrainTimeout, crashLogTail(d.logPath))
		}
	}
	if err := st.stop(); err != nil {
		t.Fatalf("final run: %v\n%s", err, crashLogTail(d.logPath))
	}
}

// crashScanner is a serial scanner in ACK/NAK (host acknowledge) mode: it
// types a code, waits for the feedback byte, and a code whose answer it did
// not hear stays pending, to be sent again, as the same code, to the next
// daemon. Only its stream goroutine touches it while a stream runs.
type crashScanner struct {
	id   string
	idx  int
	line crashLine

	pending     string // typed or about to be, no ACK heard yet
	pendingSent bool   // pending went out at least once
	made        int
	codes       []string // every code made, in order
	acked       []string
	sends       int
	retransmits int
	drained     int // stale feedback bytes discarded before a run
}

// stream types codes until ctx ends or, when newCodes >= 0, until the
// pending code and newCodes new ones were acknowledged. It returns nil when
// ctx ends (the daemon was killed and will never answer).
func (s *crashScanner) stream(ctx context.Context, run, newCodes int, timeout time.Duration, onAck func()) error {
	// An ACK that a killed daemon wrote after the scanner stopped
	// listening must not pass for the answer to the retransmission.
	n, err := s.line.Drain()
	s.drained += n
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s: drain: %w", s.id, err)
	}
	// The daemon may still be starting: the first scan waits in the pty
	// until it opens the port, as with a real scanner at boot.
	wait := crashStartTimeout
	for made := 0; ctx.Err() == nil; {
		if s.pending == "" {
			if newCodes >= 0 && made == newCodes {
				return nil
			}
			made++
			s.made++
			s.pending, s.pendingSent = fmt.Sprintf("SN-%d-%d-%d", run, s.idx, s.made), false
			s.codes = append(s.codes, s.pending)
		}
		if s.pendingSent {
			s.retransmits++
		}
		s.pendingSent = true
		s.sends++
		b, err := s.line.Send(ctx, s.pending, "\r\n", wait)
		wait = timeout
		switch {
		case err == nil && b == crashACK:
			s.acked = append(s.acked, s.pending)
			s.pending = ""
			if onAck != nil {
				onAck()
			}
		case err == nil:
			// Every code is printable and stored: anything but ACK means the
			// daemon refused it or answered out of turn.
			return fmt.Errorf("%s: feedback %#x for %q, want ACK", s.id, b, s.pending)
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("%s: %q: %w", s.id, s.pending, err)
		}
	}
	return nil
}

// crashStream is the scanners' goroutines for one run.
type crashStream struct {
	scanners []*crashScanner
	cancel   context.CancelFunc
	done     chan struct{} // every scanner returned
	failed   chan struct{} // a scanner returned an error
	stopOnce sync.Once

	mu   sync.Mutex
	errs []error
}

func crashStartStream(scanners []*crashScanner, run, newCodes int, timeout time.Duration, onAck func()) *crashStream {
	ctx, cancel := context.WithCancel(context.Background())
	st := &crashStream{scanners: scanners, cancel: cancel, done: make(chan struct{}), failed: make(chan struct{})}
	var wg sync.WaitGroup
	var failOnce sync.Once
	for _, s := range scanners {
		wg.Go(func() {
			if err := s.stream(ctx, run, newCodes, timeout, onAck); err != nil {
				st.mu.Lock()
				st.errs = append(st.errs, err)
				st.mu.Unlock()
				failOnce.Do(func() { close(st.failed) })
			}
		})
	}
	go func() {
		wg.Wait()
		close(st.done)
	}()
	return st
}

// stop ends the stream and returns the scanners' errors. A scanner waiting
// for feedback from a killed daemon is woken by an expired read deadline.
// Send sets its own deadline after typing, so a wake-up can land just
// before it and be overwritten: it is repeated until every scanner returned.
func (st *crashStream) stop() error {
	st.stopOnce.Do(func() {
		st.cancel()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, s := range st.scanners {
				s.line.wake()
			}
			select {
			case <-st.done:
				return
			case <-tick.C:
			}
		}
	})
	return st.err()
}

func (st *crashStream) err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return errors.Join(st.errs...)
}

// crashDaemon is one run of the scangw binary, a child process. Every start
// must succeed: a buffer left by a kill always opens (the buffer removes the
// empty log files of dgraph-io/badger#2207 itself).
type crashDaemon struct {
	t           *testing.T
	bin, config string

	// The current process.
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process was reaped
	err     error         // cmd.Wait's result, valid once done is closed
}

func crashNewDaemon(t *testing.T, bin, config, logPath string) *crashDaemon {
	return &crashDaemon{t: t, bin: bin, config: config, logPath: logPath}
}

// start runs the binary, its output in a log file of its own.
func (d *crashDaemon) start() {
	t := d.t
	t.Helper()
	f, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.bin, "run", "--config", d.config)
	cmd.Stdout, cmd.Stderr = f, f
	// A daemon that outlived this test would keep reopening its port path,
	// and ptys reuse their numbers: it would steal later tests' scans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	f.Close() // the child has its own copy
	if err != nil {
		t.Fatalf("start %s: %v", d.bin, err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		d.err = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
}

// kill9 kills the daemon with SIGKILL and reaps it; it fails the test if
// the daemon had already exited by itself.
func (d *crashDaemon) kill9() {
	t := d.t
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill daemon: %v", err)
	}
	<-d.done
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("daemon exited by itself before the kill: %v\n%s", d.err, crashLogTail(d.logPath))
	}
}

// stop asks the daemon to stop with SIGTERM and waits for it.
func (d *crashDaemon) stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(crashStopTimeout)
	defer timer.Stop()
	select {
	case <-d.done:
		return d.err
	case <-timer.C:
		return fmt.Errorf("still running %v after SIGTERM", crashStopTimeout)
	}
}

// crashWriteConfig writes the daemon's config into dir and returns its
// path. Every run uses the same file, so the same buffer directory.
func crashWriteConfig(t *testing.T, dir, brokerURL string, scanners []*crashScanner) string {
	t.Helper()
	var sc strings.Builder
	for _, s := range scanners {
		fmt.Fprintf(&sc, `
%s`, s.line.config(s.id))
	}
	yaml := fmt.Sprintf(`gateway: {id: %s, site: %s}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: %s, reconnect_min: 50ms, reconnect_max: 500ms}
http:    {listen: ""}
log:     {level: warn}
stations:
  - id: %s
    mode: receive
    scanners:%s
`, crashGateway, crashSite, filepath.Join(dir, "buffer"), brokerURL, crashPrefix, crashStation, sc.String())
	path := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// A config the daemon refuses would show up as 25 failed starts.
	if _, err := configs.Load(path); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return path
}

// crashEvent is the part of a scan event the crash test checks.
type crashEvent struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Data        struct {
		Seq     uint64 `json:"seq"` // a JSON integer, or Unmarshal fails
		Epoch   string `json:"epoch"`
		Station string `json:"station"`
		Scanner string `json:"scanner"`
		Raw     string `json:"raw"`
		Verdict string `json:"verdict"`
	} `json:"data"`
}

type crashStats struct {
	received         int // scan events, duplicates included
	distinct         int // distinct event ids
	storedAgain      int // scans of a code already stored: retransmitted after a kill ate the ACK
	lastSeq          uint64
	killsWithResends int // kills after which the uplink resent a delivered event
}

// crashCheckEvents checks every message the broker delivered. sentBy maps
// every code typed to its scanner; atKill holds the number of messages
// received at each kill, to tell which kill a resend followed.
func crashCheckEvents(t *testing.T, msgs []mosquittotest.Message, scanTopic string, sentBy map[string]string, atKill []int) crashStats {
	t.Helper()
	var (
		st       crashStats
		epoch    string
		seqOf    = map[string]uint64{} // event id -> seq
		idOf     = map[uint64]string{} // seq -> event id
		rawOf    = map[string]string{} // event id -> code
		received = map[string]int{}    // code -> distinct scans of it
		resent   = map[int]bool{}      // kills followed by a resend
		lastNew  uint64                // seq of the latest first arrival
		problems int
	)
	fail := func(format string, args ...any) {
		t.Helper()
		problems++
		if problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	source := fmt.Sprintf("scangw://%s/%s/%s", crashSite, crashGateway, crashStation)
	for i, m := range msgs {
		if err := schema.CheckMessage(wire.TopicsFor(crashPrefix, crashSite, crashGateway), m.Topic, m.Payload); err != nil {
			fail("message %d on %s does not match its schema: %v\n%s", i, m.Topic, err, m.Payload)
		}
		if m.Topic != scanTopic {
			continue // birth, will, offline
		}
		st.received++
		var ev crashEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			fail("message %d: not a scan event: %v\n%s", i, err, m.Payload)
			continue
		}
		if ev.SpecVersion != "1.0" || ev.Type != "io.scangw.scan.v1" || ev.Source != source || ev.ID == "" {
			fail("message %d: specversion %q type %q source %q id %q, want 1.0, io.scangw.scan.v1, %s and an id",
				i, ev.SpecVersion, ev.Type, ev.Source, ev.ID, source)
		}
		if epoch == "" {
			epoch = ev.Data.Epoch
		}
		if ev.Data.Epoch == "" || ev.Data.Epoch != epoch {
			fail("message %d: epoch %q, earlier events had %q: the buffer was started afresh", i, ev.Data.Epoch, epoch)
		}
		if seq, dup := seqOf[ev.ID]; dup {
			// At least once: a kill between the broker's PUBACK and the
			// committed delete makes the next daemon send it again.
			resent[crashKillBefore(atKill, i)] = true
			if seq != ev.Data.Seq || rawOf[ev.ID] != ev.Data.Raw {
				fail("event %s arrived as seq %d %q and as seq %d %q", ev.ID, seq, rawOf[ev.ID], ev.Data.Seq, ev.Data.Raw)
			}
			continue
		}
		if other, taken := idOf[ev.Data.Seq]; taken {
			fail("seq %d carries two scans: %s (%q) and %s (%q)", ev.Data.Seq, other, rawOf[other], ev.ID, ev.Data.Raw)
		}
		seqOf[ev.ID], idOf[ev.Data.Seq], rawOf[ev.ID] = ev.Data.Seq, ev.ID, ev.Data.Raw
		received[ev.Data.Raw]++
		if received[ev.Data.Raw] > 1 {
			st.storedAgain++
		}
		// The uplink publishes in seq order on one connection, and after a
		// restart resends from its oldest unacknowledged message, so the
		// first arrival of each seq is in order even though resends repeat
		// older seqs (and the broker keeps one publisher's order towards
		// one subscriber).
		if ev.Data.Seq <= lastNew {
			fail("message %d: seq %d first arrived after seq %d", i, ev.Data.Seq, lastNew)
		}
		lastNew = max(lastNew, ev.Data.Seq)
		scanner, typed := sentBy[ev.Data.Raw]
		switch {
		case !typed:
			fail("message %d: code %q was never typed (a frame mangled across a kill?)", i, ev.Data.Raw)
		case ev.Data.Scanner != scanner || ev.Data.Station != crashStation || ev.Data.Verdict != "accepted":
			fail("message %d: %q from scanner %q station %q verdict %q, want %s, %s, accepted",
				i, ev.Data.Raw, ev.Data.Scanner, ev.Data.Station, ev.Data.Verdict, scanner, crashStation)
		}
	}
	st.distinct = len(seqOf)
	for seq := range idOf {
		st.lastSeq = max(st.lastSeq, seq)
	}
	var gaps []uint64
	for seq := uint64(1); seq <= st.lastSeq; seq++ {
		if _, ok := idOf[seq]; !ok {
			gaps = append(gaps, seq)
		}
	}
	if len(gaps) > 0 {
		fail("seq is not gap-free: %d of 1..%d missing: %v", len(gaps), st.lastSeq, crashFirst(gaps, 20))
	}
	var lost []string
	for code := range sentBy {
		if received[code] == 0 {
			lost = append(lost, code)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		fail("%d acknowledged scans never reached the broker: %v", len(lost), crashFirst(lost, 20))
	}
	if id := idOf[st.lastSeq]; rawOf[id] != crashMarker {
		fail("the highest seq %d is %q, want the last scan %q", st.lastSeq, rawOf[id], crashMarker)
	}
	if problems > 20 {
		t.Errorf("... %d problems in all", problems)
	}
	delete(resent, 0) // a resend before any kill came from a reconnect, not a kill
	st.killsWithResends = len(resent)
	return st
}

// crashKillBefore returns the number of the latest kill before message i
// was received (0 for none).
func crashKillBefore(atKill []int, i int) int {
	k := 0
	for k < len(atKill) && atKill[k] <= i {
		k++
	}
	return k
}

func crashAckedCount(scanners []*crashScanner) int {
	n := 0
	for _, s := range scanners {
		n += len(s.acked)
	}
	return n
}

// crashLogTail returns the end of a daemon's log, for failure messages.
func crashLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", path, err)
	}
	const keep = 4096
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	if len(b) == 0 {
		return fmt.Sprintf("(log %s is empty)", path)
	}
	return fmt.Sprintf("--- %s ---\n%s", path, b)
}

// crashLogLines returns the lines of every run's log, each prefixed by its
// file's name.
func crashLogLines(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "run-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			out = append(out, filepath.Base(p)+": "+strings.TrimRight(line, "\n"))
		}
	}
	return out
}

func crashFirst[E any](s []E, n int) []E { return s[:min(len(s), n)] }
