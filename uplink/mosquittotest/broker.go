// Package mosquittotest starts real Mosquitto brokers for tests.
//
// Integration tests talk to a real broker rather than a fake (house style
// rule 9): [Start] runs `mosquitto -c <conf>` as a child process on a free
// loopback port, with its own config, log and (optionally) persistence
// directory inside the test's temp dir, and stops it when the test ends. The
// [Broker] can then be stopped, restarted on the same port, killed or paused
// to simulate outages and half-open connections.
//
// [Subscribe] attaches a paho client that checks delivery the way TESTING.md
// asks: a fixed client id, clean session off, QoS 1, and automatic reconnects,
// so it keeps its broker-side session across restarts.
//
// Running as root: Mosquitto started as root drops to the `mosquitto` user
// before it opens its log file and saves its database, and that user cannot
// reach a test's 0700 temp dir. Mosquitto then runs happily while logging
// "Permission denied" to stderr and never persisting anything, so sessions
// silently vanish across a restart. The generated config therefore says
// `user root` when the test runs as root, which keeps Mosquitto from dropping
// privileges at all.
package mosquittotest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	binaryName = "mosquitto"

	// startAttempts bounds how often Start picks a new port when another
	// process grabbed the previous one between our probe and Mosquitto's bind.
	startAttempts = 5
	readyTimeout  = 10 * time.Second
	stopTimeout   = 10 * time.Second
	// restartBindTimeout bounds how long Restart waits for its port to free
	// up: unlike Start it cannot move to another port, clients know this one.
	restartBindTimeout = 10 * time.Second
	// bindRetryDelay spaces bind attempts on a port that is still taken.
	bindRetryDelay = 50 * time.Millisecond
)

var (
	errNotFound  = errors.New("mosquitto not found: run `make test`, which installs it")
	errAddrInUse = errors.New("address already in use")

	// runningLine is what Mosquitto 2.x logs once every listener is bound.
	// Waiting for it, not just for a TCP accept, keeps a foreign process
	// that took our port from passing for our broker.
	runningLine = regexp.MustCompile(`(?m)mosquitto version \S+ running\s*$`)
)

// Options tunes the broker that Start runs.
type Options struct {
	// Persistence turns on Mosquitto's persistence, with the database in the
	// test's temp dir and saved every second, so that queued messages and
	// sessions survive Stop and Restart.
	Persistence bool
	// ExtraConfig is appended verbatim to the generated mosquitto.conf, for
	// example TLS listener lines or max_packet_size. It must not change the
	// log settings: Start reads the log to know the broker is up.
	ExtraConfig string
	// Listeners adds listeners, each on a free loopback port of its own,
	// after the default one: each string is the config that follows its
	// "listener <port> 127.0.0.1" line (cafile, certfile, keyfile,
	// require_certificate, ...). ListenerAddr(i) tells where listener i
	// runs. They are written before ExtraConfig, whose global settings
	// therefore follow them.
	Listeners []string
	// Nagle leaves Mosquitto's default set_tcp_nodelay false. Brokers
	// started by this package otherwise turn it on, as a gateway's broker
	// should run: with Nagle, a PUBACK can wait for the client's delayed
	// ACK before it leaves (BenchmarkPublishLatency shows both).
	Nagle bool
}

// Broker is a Mosquitto process run for one test. Its methods report
// failures to the testing.TB given to Start.
type Broker struct {
	t        testing.TB
	bin      string
	dir      string
	confPath string
	logPath  string
	outPath  string // Mosquitto's stdout and stderr, for errors before the log opens
	opts     Options
	port     int   // fixed once Start returns
	ports    []int // of opts.Listeners, fixed once Start returns

	mu     sync.Mutex
	proc   *process // nil while stopped
	paused bool
}

// process is one run of the mosquitto binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returns
	err  error         // cmd.Wait's result, valid after done is closed
}

// Start starts Mosquitto on a free 127.0.0.1 port, waits until it accepts
// connections and stops it when the test ends. It fails the test if the
// mosquitto binary is missing: a test that needs a broker must not pass by
// skipping.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := start(t, binaryName, opts, freePort)
	if err != nil {
		t.Fatalf("mosquittotest: %v", err)
	}
	return b
}

// start is Start with the binary and the port picker injectable, returning
// the error instead of failing the test.
func start(t testing.TB, name string, opts Options, pickPort func() (int, error)) (*Broker, error) {
	bin, err := findBinary(name)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	b := &Broker{
		t:        t,
		bin:      bin,
		dir:      dir,
		confPath: filepath.Join(dir, "mosquitto.conf"),
		logPath:  filepath.Join(dir, "mosquitto.log"),
		outPath:  filepath.Join(dir, "mosquitto.out"),
		opts:     opts,
	}
	if opts.Persistence {
		if err := os.Mkdir(b.persistDir(), 0o700); err != nil {
			return nil, fmt.Errorf("create persistence dir: %w", err)
		}
	}
	// Registered after t.TempDir, so it runs first: the broker must not
	// outlive the test nor write into a directory being removed.
	t.Cleanup(b.cleanup)

	b.mu.Lock()
	defer b.mu.Unlock()
	var lastErr error
	for range startAttempts {
		port, err := pickPort()
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		b.port = port
		b.ports = b.ports[:0]
		for range opts.Listeners {
			p, err := pickPort()
			if err != nil {
				return nil, fmt.Errorf("pick a free port: %w", err)
			}
			b.ports = append(b.ports, p)
		}
		if err := os.WriteFile(b.confPath, []byte(b.config()), 0o600); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
		lastErr = b.launchLocked()
		if lastErr == nil {
			return b, nil
		}
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	return nil, fmt.Errorf("start %s: %w\n%s", b.bin, lastErr, b.logReport())
}

// findBinary resolves name like the shell does, and also looks in the sbin
// directories where Debian installs the broker, which a non-root PATH lacks.
func findBinary(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w (%v)", errNotFound, err)
}

// freePort asks the kernel for a free loopback port. Mosquitto cannot bind
// port 0 and report the result, so the port is picked here and may be taken
// again before Mosquitto binds it; start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) persistDir() string { return filepath.Join(b.dir, "persist") }

func (b *Broker) config() string {
	var c strings.Builder
	c.WriteString("# Generated by mosquittotest.\n")
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	c.WriteString("allow_anonymous true\n")
	if !b.opts.Nagle {
		// Without it, PUBACKs at moderate rates wait for Nagle.
		c.WriteString("set_tcp_nodelay true\n")
	}
	c.WriteString("max_queued_messages 1000000\n")
	fmt.Fprintf(&c, "log_dest file %s\n", b.logPath)
	c.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	c.WriteString("log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
	if os.Geteuid() == 0 {
		// See the package comment: without it, the log and the database
		// are unwritable and persistence silently does nothing.
		c.WriteString("user root\n")
	}
	if b.opts.Persistence {
		c.WriteString("persistence true\n")
		// Mosquitto 1.x appends the file name without a separator.
		fmt.Fprintf(&c, "persistence_location %s/\n", b.persistDir())
		c.WriteString("autosave_interval 1\n")
	}
	for i, l := range b.opts.Listeners {
		fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.ports[i])
		c.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			c.WriteString("\n")
		}
	}
	if b.opts.ExtraConfig != "" {
		c.WriteString(b.opts.ExtraConfig)
		if !strings.HasSuffix(b.opts.ExtraConfig, "\n") {
			c.WriteString("\n")
		}
	}
	return c.String()
}

// launchLocked runs the binary on b.port and waits until it accepts
// connections. On failure no process is left running.
func (b *Broker) launchLocked() error {
	logStart := fileSize(b.logPath)
	out, err := os.OpenFile(b.outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", b.outPath, err)
	}
	outStart := fileSize(b.outPath)
	cmd := exec.Command(b.bin, "-c", b.confPath)
	cmd.Dir = b.dir
	cmd.Stdout = out
	cmd.Stderr = out
	err = cmd.Start()
	out.Close() // the child holds its own copy
	if err != nil {
		return fmt.Errorf("run %s: %w", b.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	// Tracked through p.done; every path that drops the process waits on it.
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := b.waitReady(p, logStart, outStart); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return err
	}
	b.proc = p
	b.paused = false
	return nil
}

// waitReady polls until p has logged that it runs and accepts a TCP
// connection, p exits, or readyTimeout passes.
func (b *Broker) waitReady(p *process, logStart, outStart int64) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if runningLine.MatchString(readFrom(b.logPath, logStart)) {
			conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
			if err == nil {
				conn.Close()
				return nil
			}
		}
		if strings.Contains(readFrom(b.outPath, outStart), "Unable to open log file") {
			// Mosquitto keeps running without its log, and so without
			// persistence: fail now rather than after readyTimeout.
			return errors.New("mosquitto cannot write its log file; if it dropped privileges, it cannot reach the test's temp dir")
		}
		select {
		case <-p.done:
			output := readFrom(b.logPath, logStart) + readFrom(b.outPath, outStart)
			if strings.Contains(output, "Address already in use") {
				return fmt.Errorf("port %d: %w", b.port, errAddrInUse)
			}
			return fmt.Errorf("mosquitto exited during startup (%v)", p.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto not accepting connections on %s after %v", b.Addr(), readyTimeout)
		}
	}
}

// Addr returns the broker's "127.0.0.1:port".
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL returns the broker's "tcp://127.0.0.1:port", as paho expects it.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Port returns the broker's TCP port, which stays the same across Restart.
func (b *Broker) Port() int { return b.port }

// ListenerAddr returns "127.0.0.1:port" of Options.Listeners[i], which
// stays the same across Restart.
func (b *Broker) ListenerAddr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.ports[i]))
}

// Reload makes the running broker reread its configuration files with
// SIGHUP (Mosquitto reloads, among others, its acl_file and
// password_file), without dropping connections. It returns once the
// broker logged the reload.
func (b *Broker) Reload() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.runningLocked("Reload")
	logStart := fileSize(b.logPath)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		b.t.Fatalf("mosquittotest: reload mosquitto on %s: %v", b.Addr(), err)
	}
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(readFrom(b.logPath, logStart), "Reloading config") {
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquittotest: mosquitto on %s did not log a reload within %v; log:\n%s", b.Addr(), readyTimeout, b.logReport())
		}
		time.Sleep(5 * time.Millisecond) // polling the broker's log file
	}
}

// Stop stops the broker with SIGTERM and waits for it to exit, so that with
// Persistence it has saved its database. It does nothing if the broker is
// already stopped.
func (b *Broker) Stop() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func (b *Broker) stopLocked() {
	b.t.Helper()
	p := b.proc
	if p == nil {
		return
	}
	b.proc = nil
	if b.reportExited(p) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if b.paused {
		// A stopped process only acts on SIGTERM once it runs again.
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		b.paused = false
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		b.t.Errorf("mosquittotest: mosquitto on %s ignored SIGTERM for %v and was killed; log:\n%s", b.Addr(), stopTimeout, b.logReport())
		return
	}
	if p.err != nil {
		b.t.Errorf("mosquittotest: mosquitto on %s exited with %v after SIGTERM; log:\n%s", b.Addr(), p.err, b.logReport())
	}
}

// reportExited fails the test if p has exited without being asked to.
func (b *Broker) reportExited(p *process) bool {
	b.t.Helper()
	select {
	case <-p.done:
		b.t.Errorf("mosquittotest: mosquitto on %s exited unexpectedly (%v); log:\n%s", b.Addr(), p.err, b.logReport())
		return true
	default:
		return false
	}
}

// Restart starts the broker again on the same port, with the same config
// and persistence directory, and waits until it accepts connections. A
// running broker is stopped first. If the port is still taken, Restart
// retries for a while before it fails the test.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
	deadline := time.Now().Add(restartBindTimeout)
	for {
		err := b.launchLocked()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			b.t.Fatalf("mosquittotest: restart mosquitto on %s: %v\n%s", b.Addr(), err, b.logReport())
		}
		time.Sleep(bindRetryDelay)
	}
}

// Kill kills the broker with SIGKILL and waits for it to exit. Whatever it
// acknowledged but had not saved is lost, as after a power cut.
func (b *Broker) Kill() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.proc
	if p == nil {
		return
	}
	b.proc = nil
	b.paused = false
	if b.reportExited(p) {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pause freezes the broker with SIGSTOP: its sockets stay open but nothing
// answers, which makes half-open connections for keepalive tests. It
// returns once the kernel reports the process stopped.
func (b *Broker) Pause() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.runningLocked("Pause")
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.t.Fatalf("mosquittotest: pause mosquitto on %s: %v", b.Addr(), err)
	}
	b.paused = true
	b.waitState(p, func(state byte) bool { return state == 'T' }, "stopped")
}

// Resume lets a paused broker run again with SIGCONT.
func (b *Broker) Resume() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.runningLocked("Resume")
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		b.t.Fatalf("mosquittotest: resume mosquitto on %s: %v", b.Addr(), err)
	}
	b.paused = false
	b.waitState(p, func(state byte) bool { return state != 'T' }, "running")
}

// runningLocked returns the live process or fails the test.
func (b *Broker) runningLocked(op string) *process {
	b.t.Helper()
	p := b.proc
	if p == nil {
		b.t.Fatalf("mosquittotest: %s: mosquitto on %s is stopped", op, b.Addr())
	}
	if b.reportExited(p) {
		b.proc = nil
		b.t.FailNow()
	}
	return p
}

// waitState waits until the process state in /proc satisfies ok. Signals
// are delivered asynchronously; without this a test could publish before
// the broker has actually frozen. Where /proc is unavailable it returns at
// once.
func (b *Broker) waitState(p *process, ok func(byte) bool, want string) {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, err := procState(p.cmd.Process.Pid)
		if err != nil || ok(state) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquittotest: mosquitto on %s not %s after 5s (state %c)", b.Addr(), want, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// procState returns the one-letter state from /proc/<pid>/stat.
func procState(pid int) (byte, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return f[0][0], nil
}

// CPUTime returns the CPU time (user and system) the running broker
// process has used so far, so a benchmark can say how much of the machine
// the broker took. It fails the test where /proc is unavailable or the
// broker is stopped.
func (b *Broker) CPUTime() time.Duration {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.runningLocked("cpu time")
	f, err := procStat(p.cmd.Process.Pid)
	if err != nil {
		b.t.Fatalf("mosquittotest: %v", err)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.t.Fatalf("mosquittotest: /proc/%d/stat: times %q %q", p.cmd.Process.Pid, f[11], f[12])
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(utime+stime) * (time.Second / 100)
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which is in parentheses and may hold spaces): the state first, utime
// and stime at 11 and 12.
func procStat(pid int) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(stat, ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(stat[i+1:]))
	}
	if len(f) < 13 || len(f[0]) != 1 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f, nil
}

// Log returns the broker's log across all its runs, followed by anything
// it wrote to stdout or stderr (errors from before the log file opened).
func (b *Broker) Log() string {
	log, _ := os.ReadFile(b.logPath)
	out, _ := os.ReadFile(b.outPath)
	s := string(log)
	if len(bytes.TrimSpace(out)) > 0 {
		s += "\n--- mosquitto stdout/stderr ---\n" + string(out)
	}
	return s
}

// logReport is Log indented for a failure message.
func (b *Broker) logReport() string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(b.Log(), "\n"), "\n", "\n\t")
}

// state describes the broker for failure messages.
func (b *Broker) state() string {
	b.mu.Lock()
	p, paused := b.proc, b.paused
	b.mu.Unlock()
	switch {
	case p == nil:
		return "stopped"
	case isDone(p):
		return fmt.Sprintf("exited unexpectedly (%v)", p.err)
	case paused:
		return "paused"
	default:
		return "running"
	}
}

func (b *Broker) cleanup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func isDone(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the file's contents from offset on, or "" if unreadable.
func readFrom(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	return string(data[offset:])
}
