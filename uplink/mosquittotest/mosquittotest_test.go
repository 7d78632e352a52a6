package mosquittotest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const waitTimeout = 10 * time.Second

// connect returns a connected paho client with a clean session.
func connect(t *testing.T, b *Broker, clientID string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(clientID).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second))
	t.Cleanup(func() { c.Disconnect(0) })
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("connect %q to %s: %v\n%s", clientID, b.Addr(), tok.Error(), b.Log())
	}
	return c
}

// publishSeq publishes payloads first..first+n-1 at QoS 1, one at a time.
func publishSeq(t *testing.T, c mqtt.Client, topic string, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		tok := c.Publish(topic, 1, false, strconv.Itoa(i))
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("publish %d to %s: %v", i, topic, tok.Error())
		}
	}
}

// payloads returns the payloads in order of first arrival. QoS 1 allows
// duplicates, e.g. a redelivery whose PUBACK the stopped broker never read.
func payloads(msgs []Message) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range msgs {
		if p := string(m.Payload); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func seq(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(first + i)
	}
	return out
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := Start(t, Options{})
	s := Subscribe(t, b, "sub-basic", "scans/#")
	publishSeq(t, connect(t, b, "pub-basic"), "scans/st1", 0, 100)
	s.WaitCount(100, waitTimeout)

	msgs := s.Messages()
	if got, want := len(msgs), 100; got != want {
		t.Fatalf("got %d messages, want %d", got, want)
	}
	for i, m := range msgs {
		if m.Topic != "scans/st1" || string(m.Payload) != strconv.Itoa(i) || m.Retained || m.QoS != 1 {
			t.Fatalf("message %d = %+v, want topic scans/st1 payload %d not retained, at QoS 1", i, m, i)
		}
	}
	if s.Count() != 100 {
		t.Errorf("Count() = %d, want 100", s.Count())
	}
	if log := b.Log(); !runningLine.MatchString(log) {
		t.Errorf("Log() lacks the running line:\n%s", log)
	}
	if want := "tcp://" + b.Addr(); b.URL() != want || b.Addr() != "127.0.0.1:"+strconv.Itoa(b.Port()) {
		t.Errorf("Addr() = %q, URL() = %q, Port() = %d disagree", b.Addr(), b.URL(), b.Port())
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	b := Start(t, Options{Persistence: true})

	// An offline persistent session: the broker queues for it, and the
	// queue must survive a SIGTERM restart.
	offline := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("sub-persist").SetCleanSession(false))
	if tok := offline.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := offline.Subscribe("scans/#", 1, nil); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	offline.Disconnect(250)
	pub := connect(t, b, "pub-persist-1")
	publishSeq(t, pub, "scans/st1", 0, 50)
	pub.Disconnect(250)
	b.Stop()
	b.Stop() // idempotent
	b.Restart()

	s := Subscribe(t, b, "sub-persist", "scans/#")
	s.WaitCount(50, waitTimeout)

	// A connected subscriber across a restart reconnects by itself, and what
	// is published while it is still reconnecting is queued for it.
	b.Stop()
	b.Restart()
	publishSeq(t, connect(t, b, "pub-persist-2"), "scans/st1", 50, 50)
	s.WaitFor(waitTimeout, "payloads 0..99", func(m []Message) bool { return len(payloads(m)) >= 100 })
	if got, want := payloads(s.Messages()), seq(0, 100); !slices.Equal(got, want) {
		t.Errorf("payloads in order of arrival = %v, want %v", got, want)
	}
}

func TestKillRestartResubscribes(t *testing.T) {
	t.Parallel()
	// Without persistence the session dies with the broker; the
	// subscriber's OnConnect subscribes again.
	b := Start(t, Options{})
	s := Subscribe(t, b, "sub-kill", "scans/#")
	b.Kill()
	b.Kill() // idempotent
	b.Restart()
	s.waitSubscribed(2, waitTimeout)
	publishSeq(t, connect(t, b, "pub-kill"), "scans/st1", 0, 10)
	s.WaitCount(10, waitTimeout)
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	b := Start(t, Options{})
	s := Subscribe(t, b, "sub-pause", "scans/#")
	pub := connect(t, b, "pub-pause")

	b.Pause()
	tok := pub.Publish("scans/st1", 1, false, "during pause")
	if tok.WaitTimeout(300 * time.Millisecond) {
		t.Fatalf("publish completed (err %v) while the broker was paused", tok.Error())
	}
	b.Resume()
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish after Resume: %v", tok.Error())
	}
	s.WaitCount(1, waitTimeout)

	// Stop must also end a paused broker.
	b.Pause()
	b.Stop()
}

func TestStartMissingBinary(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"/nonexistent/mosquitto", "scangw-no-such-mosquitto"} {
		t.Run(name, func(t *testing.T) {
			_, err := start(t, name, Options{}, freePort)
			if !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), "mosquitto not found: run `make test`") {
				t.Fatalf("start(%q) = %v, want errNotFound", name, err)
			}
		})
	}
}

func TestStartRetriesTakenPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	picks := 0
	pick := func() (int, error) {
		picks++
		if picks == 1 {
			return takenPort, nil
		}
		return freePort()
	}
	b, err := start(t, binaryName, Options{}, pick)
	if err != nil {
		t.Fatal(err)
	}
	if b.Port() == takenPort || picks != 2 {
		t.Errorf("port %d after %d picks, want a new port after 2 (taken: %d)", b.Port(), picks, takenPort)
	}
	if !strings.Contains(b.Log(), "Address already in use") {
		t.Errorf("log does not show the failed bind:\n%s", b.Log())
	}
}

func TestRestartWaitsForPort(t *testing.T) {
	t.Parallel()
	b := Start(t, Options{})
	b.Stop()
	taken, err := net.Listen("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// Hold the port across a few of Restart's bind attempts.
	time.AfterFunc(300*time.Millisecond, func() { taken.Close() })
	b.Restart()
	if !strings.Contains(b.Log(), "Address already in use") {
		t.Errorf("log does not show the failed bind:\n%s", b.Log())
	}
	connect(t, b, "after-restart")
}

// recordingTB records failures instead of reporting them; Fatal ends the
// calling goroutine like the real one.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) FailNow() {
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) failures() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errors), r.fatal
}

func TestUnexpectedExitIsReported(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	b := Start(rec, Options{})
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if got := b.state(); !strings.HasPrefix(got, "exited unexpectedly") {
		t.Errorf("state() = %q, want exited unexpectedly", got)
	}
	b.Stop()
	errs, _ := rec.failures()
	if len(errs) != 1 || !strings.Contains(errs[0], "exited unexpectedly") || !strings.Contains(errs[0], "mosquitto version") {
		t.Fatalf("failures = %q, want one unexpected-exit report with the log", errs)
	}
}

func TestWaitForTimeoutReports(t *testing.T) {
	t.Parallel()
	b := Start(t, Options{})
	rec := &recordingTB{TB: t}
	s := Subscribe(rec, b, "sub-timeout", "scans/#")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitCount(1, 50*time.Millisecond)
	}()
	<-done
	errs, fatal := rec.failures()
	if !fatal || len(errs) != 1 || !strings.Contains(errs[0], "waiting for 1 messages") || !strings.Contains(errs[0], "received 0 messages") {
		t.Fatalf("failures = %q (fatal %v), want a timeout summary", errs, fatal)
	}
}

// TestListenersAndReload runs a second listener whose settings follow its
// own listener line, and reloads an ACL without restarting: a publish the
// ACL denies is acknowledged and dropped, and after Reload it passes.
func TestListenersAndReload(t *testing.T) {
	t.Parallel()
	acl := t.TempDir() + "/acl"
	if err := os.WriteFile(acl, []byte("topic read #\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := Start(t, Options{
		Listeners:   []string{"max_connections 10"},
		ExtraConfig: "acl_file " + acl + "\n",
	})
	if b.ListenerAddr(0) == b.Addr() {
		t.Fatalf("listener 0 shares the default port %s", b.Addr())
	}
	conn, err := net.DialTimeout("tcp", b.ListenerAddr(0), waitTimeout)
	if err != nil {
		t.Fatalf("dial listener 0: %v\n%s", err, b.Log())
	}
	conn.Close()

	sub := Subscribe(t, b, "sub-acl", "acl/#")
	pub := connect(t, b, "pub-acl")
	publishSeq(t, pub, "acl/x", 1, 1) // PUBACKed, dropped by the ACL
	if err := os.WriteFile(acl, []byte("topic readwrite #\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Reload()
	publishSeq(t, pub, "acl/x", 2, 1)
	sub.WaitCount(1, waitTimeout)
	if got := payloads(sub.Messages()); !slices.Equal(got, []string{"2"}) {
		t.Errorf("received %q, want only the publish after the reload", got)
	}
}
