package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// notifySocket is the test's stand-in for systemd's notify socket: a
// unixgram socket that also reports each datagram's sender, as systemd
// checks it for NotifyAccess=main.
type notifySocket struct {
	t    testing.TB
	conn *net.UnixConn
	addr string // as NOTIFY_SOCKET says it
}

// datagram is one notification and who sent it.
type datagram struct {
	text string
	pid  int32
}

// listenNotify listens on a socket in the test's temp dir, or on an
// abstract one when name starts with '@'.
func listenNotify(t testing.TB, name string) *notifySocket {
	t.Helper()
	if name == "" {
		name = filepath.Join(t.TempDir(), "notify")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	return &notifySocket{t: t, conn: conn, addr: name}
}

// next returns the next datagram, or an error once timeout passed
// without one.
func (s *notifySocket) next(timeout time.Duration) (datagram, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	s.conn.SetReadDeadline(time.Now().Add(timeout))
	n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return datagram{}, err
	}
	d := datagram{text: string(buf[:n]), pid: -1}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if cred, err := unix.ParseUnixCredentials(&msgs[0]); err == nil {
			d.pid = cred.Pid
		}
	}
	return d, nil
}

// expect returns the next datagram, failing the test when none comes
// within timeout.
func (s *notifySocket) expect(timeout time.Duration) datagram {
	s.t.Helper()
	d, err := s.next(timeout)
	if err != nil {
		s.t.Fatalf("no notification within %v: %v", timeout, err)
	}
	return d
}

// waitFor reads datagrams until one holds the line want, and returns
// it; every datagram read meanwhile is passed to seen (which may be nil).
func (s *notifySocket) waitFor(timeout time.Duration, want string, seen func(datagram)) datagram {
	s.t.Helper()
	return s.waitUntil(timeout, want, func(text string) bool { return hasLine(text, want) }, seen)
}

// waitUntil reads datagrams until one satisfies match.
func (s *notifySocket) waitUntil(timeout time.Duration, what string, match func(text string) bool, seen func(datagram)) datagram {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := s.next(time.Until(deadline))
		if err != nil {
			s.t.Fatalf("no %s within %v: %v", what, timeout, err)
		}
		if seen != nil {
			seen(d)
		}
		if match(d.text) {
			return d
		}
	}
}

func hasLine(text, line string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// lineValue returns the value of VAR= in a datagram.
func lineValue(text, name string) (string, bool) {
	for l := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func monotonicUsec(t testing.TB) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNotifierSendsEachState(t *testing.T) {
	for _, where := range []string{"path", "abstract"} {
		t.Run(where, func(t *testing.T) {
			name := ""
			if where == "abstract" {
				name = fmt.Sprintf("@scangw-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			}
			sock := listenNotify(t, name)
			n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": sock.addr}), os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				send func() error
				want string
			}{
				{n.Ready, "READY=1"},
				{n.Watchdog, "WATCHDOG=1"},
				{n.Stopping, "STOPPING=1"},
				// A newline would start a variable of its own.
				{func() error { return n.Status("stuck:\nstation dock-1") }, "STATUS=stuck: station dock-1"},
			} {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
				if d := sock.expect(5 * time.Second); d.text != tc.want || d.pid != int32(os.Getpid()) {
					t.Fatalf("got %q from pid %d, want %q from %d", d.text, d.pid, tc.want, os.Getpid())
				}
			}
			before := monotonicUsec(t)
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			after := monotonicUsec(t)
			d := sock.expect(5 * time.Second)
			v, ok := lineValue(d.text, "MONOTONIC_USEC")
			usec, err := strconv.ParseInt(v, 10, 64)
			if !hasLine(d.text, "RELOADING=1") || !ok || err != nil || usec < before || usec > after {
				t.Fatalf("reloading sent %q; want RELOADING=1 and MONOTONIC_USEC within [%d, %d]", d.text, before, after)
			}
		})
	}
}

// Without NOTIFY_SOCKET (not started by systemd, or by a Type=simple
// unit) every method does nothing and succeeds.
func TestNotifierWithoutSystemd(t *testing.T) {
	n, err := newNotifier(envOf(map[string]string{"WATCHDOG_USEC": "30000000"}), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{n.Ready, n.Reloading, n.Stopping, n.Watchdog, func() error { return n.Status("x") }} {
		if err := f(); err != nil {
			t.Fatalf("without NOTIFY_SOCKET: %v", err)
		}
	}
	if d := n.WatchdogInterval(); d != 0 {
		t.Fatalf("watchdog %v without a socket to ping, want 0", d)
	}
}

// The socket is kept, and made again when the manager re-created its own
// (systemctl daemon-reexec): the next send still arrives.
func TestNotifierSurvivesANewSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	first := listenNotify(t, path)
	n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": path}), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Watchdog(); err != nil {
		t.Fatal(err)
	}
	first.expect(5 * time.Second)
	first.conn.Close()
	os.Remove(path)
	second := listenNotify(t, path)
	if err := n.Watchdog(); err != nil {
		t.Fatalf("send after the socket was re-created: %v", err)
	}
	if d := second.expect(5 * time.Second); d.text != "WATCHDOG=1" {
		t.Fatalf("got %q on the new socket", d.text)
	}
}

// Goroutines share one notifier: every datagram arrives whole.
func TestNotifierConcurrentUse(t *testing.T) {
	sock := listenNotify(t, "")
	n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": sock.addr}), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 8, 50
	got := make(chan error, 1)
	go func() {
		counts := map[string]int{}
		for range senders * each {
			d, err := sock.next(10 * time.Second)
			if err != nil {
				got <- err
				return
			}
			counts[d.text]++
		}
		for i := range senders {
			if c := counts[fmt.Sprintf("STATUS=sender %d", i)]; c != each {
				got <- fmt.Errorf("sender %d: %d datagrams arrived whole, want %d (all: %v)", i, c, each, counts)
				return
			}
		}
		got <- nil
	}()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for range each {
				if err := n.Status(fmt.Sprintf("sender %d", i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestNotifyEnvironment(t *testing.T) {
	const self = 4242
	for _, tc := range []struct {
		name           string
		socket         string
		usec, pid      string
		wantSocket     bool
		wantWatchdog   time.Duration
		wantErrContain string
	}{
		{name: "unset"},
		{name: "path", socket: "/run/systemd/notify", wantSocket: true},
		{name: "abstract", socket: "@/org/freedesktop/systemd1/notify/1", wantSocket: true},
		{name: "watchdog", socket: "/run/systemd/notify", usec: "30000000", wantSocket: true, wantWatchdog: 30 * time.Second},
		{name: "watchdog for us", socket: "/run/n", usec: "2000000", pid: "4242", wantSocket: true, wantWatchdog: 2 * time.Second},
		// Inherited from a watched parent: not ours to ping.
		{name: "watchdog for another", socket: "/run/n", usec: "2000000", pid: "1", wantSocket: true},
		{name: "huge interval", socket: "/run/n", usec: "18446744073709551614", wantSocket: true, wantWatchdog: time.Duration(1<<63 - 1).Truncate(time.Microsecond)},
		{name: "no socket to ping", usec: "30000000"},
		{name: "relative", socket: "run/notify", wantErrContain: "NOTIFY_SOCKET"},
		{name: "vsock", socket: "vsock:2:1234", wantErrContain: "NOTIFY_SOCKET"},
		{name: "bare at", socket: "@", wantErrContain: "NOTIFY_SOCKET"},
		{name: "nul", socket: "/run/a\x00b", wantErrContain: "NUL"},
		{name: "too long", socket: "/" + strings.Repeat("a", 107), wantErrContain: "longer"},
		{name: "abstract at the limit", socket: "@" + strings.Repeat("a", 107), wantSocket: true},
		{name: "zero", socket: "/run/n", usec: "0", wantSocket: true, wantErrContain: "WATCHDOG_USEC"},
		{name: "infinity", socket: "/run/n", usec: "18446744073709551615", wantSocket: true, wantErrContain: "WATCHDOG_USEC"},
		{name: "not a number", socket: "/run/n", usec: "30s", wantSocket: true, wantErrContain: "WATCHDOG_USEC"},
		{name: "negative", socket: "/run/n", usec: "-1", wantSocket: true, wantErrContain: "WATCHDOG_USEC"},
		{name: "bad pid", socket: "/run/n", usec: "1000", pid: "x", wantSocket: true, wantErrContain: "WATCHDOG_PID"},
		{name: "zero pid", socket: "/run/n", usec: "1000", pid: "0", wantSocket: true, wantErrContain: "WATCHDOG_PID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": tc.socket, "WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.pid}), self)
			if tc.wantErrContain == "" && err != nil || tc.wantErrContain != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrContain)) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErrContain)
			}
			if (n.addr != nil) != tc.wantSocket || n.WatchdogInterval() != tc.wantWatchdog {
				t.Fatalf("socket %v, watchdog %v; want socket %v, watchdog %v", n.addr, n.WatchdogInterval(), tc.wantSocket, tc.wantWatchdog)
			}
		})
	}
}

// FuzzNotifyEnvironment: whatever the environment holds, the notifier is
// made, with a positive watchdog only from a number and for this process.
func FuzzNotifyEnvironment(f *testing.F) {
	f.Add("/run/systemd/notify", "30000000", "")
	f.Add("@notify", "2000000", "7")
	f.Add("vsock:2:1", "0", "x")
	f.Add("/run/n", "18446744073709551614", "7")
	f.Fuzz(func(t *testing.T, socket, usec, pid string) {
		n, _ := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": usec, "WATCHDOG_PID": pid}), 7)
		if n == nil {
			t.Fatal("no notifier")
		}
		if d := n.WatchdogInterval(); d < 0 || d > 0 && (n.addr == nil || pid != "" && pid != "7") {
			t.Fatalf("watchdog %v from socket %q, usec %q, pid %q", d, socket, usec, pid)
		}
		if n.addr != nil && (strings.IndexByte(n.addr.Name, 0) >= 0 || n.addr.Name[0] != '/' && n.addr.Name[0] != '@') {
			t.Fatalf("socket %q accepted", n.addr.Name)
		}
	})
}

// notifyDaemon is the real daemon run as a child process under a
// notify socket the test owns, as systemd would run it.
type notifyDaemon struct {
	cmd     *exec.Cmd
	sock    *notifySocket
	logPath string
	done    chan struct{}
	err     error // cmd.Wait's, once done is closed
}

// notifyWatchdog is the WATCHDOG_USEC the daemon gets: pings every
// second. Short, so the tests are quick; not so short that a loaded
// machine's slow fdatasync looks like a wedge.
const notifyWatchdog = 2 * time.Second

func startNotifyDaemon(t *testing.T, config string) *notifyDaemon {
	t.Helper()
	bin := buildScangw(t)
	d := &notifyDaemon{sock: listenNotify(t, ""), logPath: filepath.Join(t.TempDir(), "scangw.log"), done: make(chan struct{})}
	f, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "run", "--config", config)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+d.sock.addr,
		"WATCHDOG_USEC="+strconv.FormatInt(notifyWatchdog.Microseconds(), 10))
	// A daemon that outlived the test would keep its pty and port.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = d.cmd.Start()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon log:\n%s", crashLogTail(d.logPath))
		}
	})
	return d
}

// alive reports whether the daemon still runs.
func (d *notifyDaemon) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits: STOPPING=1 must come from the daemon
// itself, and it must then exit 0.
func (d *notifyDaemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := d.sock.waitFor(30*time.Second, "STOPPING=1", nil)
	if got.pid != int32(d.cmd.Process.Pid) {
		t.Fatalf("STOPPING=1 from pid %d, not the daemon's %d", got.pid, d.cmd.Process.Pid)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon still running 30s after SIGTERM")
	}
	if d.err != nil {
		t.Fatalf("daemon exited with %v after SIGTERM", d.err)
	}
}

// notifyConfig writes a config for one station with a scanner on line,
// answering good and bad with the given feedback.
func notifyConfig(t *testing.T, brokerURL string, line *serialsim.Pty, good, bad string) string {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`gateway: {id: gw-notify, site: plant-n}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 50ms, reconnect_max: 500ms}
http:    {listen: ""}
log:     {level: info}
stations:
  - id: dock-w
    mode: receive
    scanners:
      - {id: h1, port: %q, terminator: "\r\n", feedback: {good: %q, bad: %q}}
`, filepath.Join(dir, "buffer"), brokerURL, line.Path(), good, bad)
	path := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := configs.Load(path); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return path
}

// TestSdNotifyProtocol runs the daemon as systemd would with
// Type=notify, WatchdogSec= and ExecReload=kill -HUP: READY=1 once the
// station reads, WATCHDOG=1 every half interval (scans or not), a reload
// bracketed by RELOADING=1 with MONOTONIC_USEC and READY=1, and
// STOPPING=1 on SIGTERM; every datagram from the daemon's own pid
// (NotifyAccess=main).
func TestSdNotifyProtocol(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	d := startNotifyDaemon(t, notifyConfig(t, broker.URL(), line, "\x06", "\x15"))
	pid := int32(d.cmd.Process.Pid)
	fromDaemon := func(g datagram) {
		if g.pid != pid {
			t.Fatalf("%q from pid %d, not the daemon's %d", g.text, g.pid, pid)
		}
	}

	d.sock.waitFor(30*time.Second, "READY=1", fromDaemon)
	pings := 0
	countPings := func(g datagram) {
		fromDaemon(g)
		if hasLine(g.text, "WATCHDOG=1") {
			pings++
		}
	}
	for pings < 3 {
		d.sock.waitFor(5*notifyWatchdog, "WATCHDOG=1", countPings)
	}
	// Scans go on being answered, and pinged for, in between.
	for i := range 20 {
		b, err := line.Send(context.Background(), fmt.Sprintf("N-%03d", i), "\r\n", 20*time.Second)
		if err != nil || b != 0x06 {
			t.Fatalf("scan %d: feedback %#x, %v; want ACK", i, b, err)
		}
	}
	atScans := pings
	for pings < atScans+2 {
		d.sock.waitFor(5*notifyWatchdog, "WATCHDOG=1", countPings)
	}

	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	before := monotonicUsec(t)
	reloading := d.sock.waitFor(30*time.Second, "RELOADING=1", fromDaemon)
	v, ok := lineValue(reloading.text, "MONOTONIC_USEC")
	usec, err := strconv.ParseInt(v, 10, 64)
	// The daemon read CLOCK_MONOTONIC after the signal was sent (give or
	// take the signal's delivery: sent just before "before" was read).
	if !ok || err != nil || usec <= 0 || usec > monotonicUsec(t) || usec < before-int64(time.Second/time.Microsecond) {
		t.Fatalf("RELOADING=1 came with %q; want MONOTONIC_USEC of the daemon's CLOCK_MONOTONIC at the reload", reloading.text)
	}
	d.sock.waitFor(30*time.Second, "READY=1", fromDaemon)
	if !d.alive() {
		t.Fatalf("daemon exited on SIGHUP: %v", d.err)
	}
	// Still watched after the reload.
	atReload := pings
	for pings < atReload+2 {
		d.sock.waitFor(5*notifyWatchdog, "WATCHDOG=1", countPings)
	}
	d.stop(t)
	t.Logf("%d watchdog pings (WATCHDOG_USEC=%d)", pings, notifyWatchdog.Microseconds())
}

// TestSdNotifyWedgedStationStopsPings wedges a station for real: the
// scanner's feedback is written to a pty whose master the test does not
// read, so once the pty's buffer is full the feedback write blocks, and
// with it the read loop. The daemon must stop its watchdog pings (so
// systemd would restart it), say which part is stuck, and stay up; once
// the master is read again the station moves and the pings resume.
func TestSdNotifyWedgedStationStopsPings(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	// The longest feedback a config may say (64 bytes): a Linux pty
	// holds a few hundred of them unread.
	good, bad := strings.Repeat("G", 64), strings.Repeat("B", 64)
	d := startNotifyDaemon(t, notifyConfig(t, broker.URL(), line, good, bad))
	d.sock.waitFor(30*time.Second, "READY=1", nil)
	d.sock.waitFor(5*notifyWatchdog, "WATCHDOG=1", nil)

	// Scans, and never a look at the answers.
	stopWriting := make(chan struct{})
	written := make(chan int, 1)
	go func() {
		n := 0
		defer func() { written <- n }()
		for ; ; n++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			// Once the daemon stops reading, the other direction fills up
			// too: a write that cannot go out for a while ends the stream.
			line.Master().SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := fmt.Fprintf(line.Master(), "W-%05d\r\n", n); err != nil {
				return
			}
		}
	}()
	stuck := d.sock.waitUntil(60*time.Second, "STATUS=stuck", func(text string) bool {
		v, _ := lineValue(text, "STATUS")
		return strings.HasPrefix(v, "stuck:")
	}, nil)
	close(stopWriting)
	t.Logf("%d scans written before the station stuck; status %q", <-written, stuck.text)
	if v, _ := lineValue(stuck.text, "STATUS"); !strings.Contains(v, "station read loop dock-w") {
		t.Errorf("status %q does not name the stuck station", v)
	}

	// No ping for three times the ping interval: systemd would have
	// restarted the daemon by now.
	quiet := time.Now().Add(3 * notifyWatchdog / 2)
	for {
		g, err := d.sock.next(time.Until(quiet))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hasLine(g.text, "WATCHDOG=1") {
			t.Fatalf("a watchdog ping while the station is stuck: %q", g.text)
		}
	}
	if !d.alive() {
		t.Fatalf("daemon exited while stuck: %v", d.err)
	}
	logs, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no more watchdog pings", `part="station read loop"`, "which=dock-w", "busy_since="} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("the journal would not say why systemd restarted the daemon: log lacks %s", want)
		}
	}

	// The scanner reads its answers again: the station moves, pings resume.
	stopDraining := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		for {
			select {
			case <-stopDraining:
				return
			default:
			}
			line.Master().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			line.Master().Read(buf)
		}
	}()
	defer func() { close(stopDraining); <-drained }()
	d.sock.waitFor(30*time.Second, "WATCHDOG=1", nil)
	d.stop(t)
	if logs, _ := os.ReadFile(d.logPath); !strings.Contains(string(logs), "pings resume") {
		t.Error("log does not say the pings resumed")
	}
}

// A reload during start-up says nothing to systemd: its READY=1 would come
// before the stations are ready.
func TestNotifierStarted(t *testing.T) {
	var n notifier // no NOTIFY_SOCKET: sends nothing, still tracks
	if n.Started() {
		t.Fatal("started before READY=1")
	}
	n.Ready()
	if !n.Started() {
		t.Fatal("not started after READY=1")
	}
}
