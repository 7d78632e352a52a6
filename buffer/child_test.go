package buffer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers for the tests that run the buffer in a child process (the test
// binary re-executed on one Test*Child function) so that it can be killed
// with SIGKILL, or so that a fatal signal in it (SIGBUS on a full disk)
// fails the test instead of the whole test binary.

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// pollUntil polls cond every millisecond until it holds (true) or d passed
// (false).
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// child is a re-executed test binary whose stdout is read line by line.
type child struct {
	cmd    *exec.Cmd
	lines  chan string // closed at EOF
	stderr *syncBuffer
	exited chan struct{}
	state  *os.ProcessState
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// emulatorEnv names a user-mode emulator (qemu-arm-static) to run child
// test binaries with when the tests themselves run under one (`make
// test-arm`): without binfmt_misc the kernel cannot execute a foreign
// binary directly.
const emulatorEnv = "SCANGW_TEST_EMULATOR"

// emulatorSlowdown scales the time a child is given to do some work
// before it is killed: under emulation it gets through about a tenth.
func emulatorSlowdown() time.Duration {
	if os.Getenv(emulatorEnv) != "" {
		return 10
	}
	return 1
}

// selfCommand runs this test binary again with args.
func selfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv(emulatorEnv); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}

// startChild runs the test binary on the one test named run, with env
// added to this process's environment.
func startChild(t testing.TB, run string, env ...string) *child {
	t.Helper()
	cmd := selfCommand("-test.run=^"+run+"$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env...)
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		// Wait only after EOF: it closes the pipe.
		cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// expect returns the next line, which must start with prefix, failing the
// test if the child says anything else first, exits, or stays silent for d.
func (c *child) expect(t testing.TB, prefix string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.exited
			t.Fatalf("child exited (%v) before %q; stderr:\n%s", c.state, prefix, c.stderr)
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("child said %q, want %q...; stderr:\n%s", line, prefix, c.stderr)
		}
		return line
	case <-timer.C:
		t.Fatalf("child silent for %v, want %q; stderr:\n%s", d, prefix, c.stderr)
	}
	return ""
}

// kill sends SIGKILL and waits for the child to be reaped, returning the
// lines it printed that were not read yet.
func (c *child) kill(t testing.TB) []string {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	var rest []string
	for line := range c.lines {
		rest = append(rest, line)
	}
	<-c.exited
	return rest
}

// wait waits up to d for the child to exit by itself and returns every line
// it printed that was not read yet.
func (c *child) wait(t testing.TB, d time.Duration) []string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var rest []string
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.exited
				return rest
			}
			rest = append(rest, line)
		case <-timer.C:
			t.Fatalf("child still running after %v; stderr:\n%s", d, c.stderr)
		}
	}
}

// say writes one line to stdout in one write(2): a line either reaches the
// parent whole or not at all, even if the process is killed.
type sayer struct{ mu sync.Mutex }

func (s *sayer) say(format string, args ...any) {
	line := fmt.Appendf(nil, format+"\n", args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	os.Stdout.Write(line)
}

// fail reports a child's failure to the parent and exits.
func (s *sayer) fail(format string, args ...any) {
	s.say("E "+format, args...)
	os.Exit(3)
}

// seqPayload is a payload that carries its seq, padded to size bytes.
func seqPayload(seq uint64, size int) []byte {
	p := fmt.Appendf(make([]byte, 0, size), "seq=%d;", seq)
	for len(p) < size {
		p = append(p, byte('a'+len(p)%26))
	}
	return p
}

// payloadSeq reads the seq back out of a seqPayload.
func payloadSeq(p []byte) (uint64, bool) {
	s, ok := bytes.CutPrefix(p, []byte("seq="))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(s, ';')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s[:i]), 10, 64)
	return n, err == nil
}

// peekAll reads the whole queue with Peek.
func peekAll(t testing.TB, b *Buffer) []Entry {
	t.Helper()
	var all []Entry
	var from uint64
	for {
		es, err := b.Peek(from, 4096)
		if err != nil {
			t.Fatalf("peek from %d: %v", from, err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
		from = es[len(es)-1].Pos + 1
	}
}

// appendConcurrently appends n seqPayloads from writers goroutines;
// size(seq) gives each payload's size.
func appendConcurrently(t testing.TB, b *Buffer, n, writers int, size func(seq uint64) int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	left := n
	var firstErr error
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if left == 0 || firstErr != nil {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				_, err := b.Append(context.Background(), "t/scan", func(seq uint64) ([]byte, error) {
					return seqPayload(seq, size(seq)), nil
				})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("append: %v", firstErr)
	}
}

// crashChildEnv names the directory TestCrashChild fills; crashSpecEnv
// says how: "n=<appends>,size=<bytes>,big=<every k-th payload is 2 KiB, 0:
// none>,ack=<acks of the oldest>".
const (
	crashChildEnv = "SCANGW_CRASH_CHILD_DIR"
	crashSpecEnv  = "SCANGW_CRASH_CHILD_SPEC"
)

// TestCrashChild is not a test on its own: a parent runs it in a child
// process to leave a directory the way a SIGKILL leaves it. It appends,
// acks, waits until the acks committed, says "DONE <next seq>", and waits
// for its SIGKILL.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return
	}
	var out sayer
	spec := map[string]int{}
	for _, kv := range strings.Split(os.Getenv(crashSpecEnv), ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			out.fail("bad spec %q", kv)
		}
		spec[k] = n
	}
	b, err := Open(Options{Dir: dir})
	if err != nil {
		out.fail("open: %v", err)
	}
	depth0 := b.Depth()
	appendConcurrently(t, b, spec["n"], 8, func(seq uint64) int {
		if spec["big"] > 0 && seq%uint64(spec["big"]) == 0 {
			return 2 << 10
		}
		return spec["size"]
	})
	es, err := b.Peek(0, spec["ack"])
	if err != nil || len(es) != spec["ack"] {
		out.fail("peek: %d entries, %v", len(es), err)
	}
	for _, e := range es {
		b.Ack(e.Pos)
	}
	want := depth0 + int64(spec["n"]-spec["ack"])
	if !pollUntil(time.Minute, func() bool { return b.Depth() == want }) {
		out.fail("depth %d, want %d", b.Depth(), want)
	}
	out.say("DONE %d", b.NextSeq())
	select {} // until killed
}
