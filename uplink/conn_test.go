package uplink

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose writes are recorded and, when gate is
// set, held until the test lets them through.
type scriptConn struct {
	net.Conn // nil: unused methods panic
	reads    *strings.Reader

	mu      sync.Mutex
	writes  [][]byte
	closed  bool
	failAll error

	entered chan struct{} // a Write has started
	gate    chan struct{} // nil: writes pass at once
}

func (s *scriptConn) Read(p []byte) (int, error) { return s.reads.Read(p) }

func (s *scriptConn) Write(p []byte) (int, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll != nil {
		return 0, s.failAll
	}
	if s.closed {
		return 0, net.ErrClosed
	}
	s.writes = append(s.writes, bytes.Clone(p))
	return len(p), nil
}

func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }

func (s *scriptConn) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *scriptConn) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.writes {
		out = append(out, string(w))
	}
	return out
}

// markUp reads the broker's first byte, as paho's CONNACK read does.
func markUp(t *testing.T, c *batchConn) {
	t.Helper()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestBatchConnGathersWritesMadeDuringAWrite(t *testing.T) {
	sc := &scriptConn{reads: strings.NewReader("C"), entered: make(chan struct{}), gate: make(chan struct{})}
	c := newBatchConn(sc, time.Second)
	// Before the broker answered, a write is the caller's own.
	done := make(chan error)
	go func() { _, err := c.Write([]byte("connect")); done <- err }()
	<-sc.entered
	sc.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	markUp(t, c)

	// The first publish starts a flusher, which is held in the kernel
	// write; the next two wait for it and leave together.
	if _, err := c.Write([]byte("p1")); err != nil {
		t.Fatal(err)
	}
	<-sc.entered
	for _, p := range []string{"p2", "p3"} {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	sc.gate <- struct{}{}
	<-sc.entered
	sc.gate <- struct{}{}
	if err := c.Close(); err != nil { // waits for the flusher
		t.Fatal(err)
	}
	got := sc.written()
	want := []string{"connect", "p1", "p2p3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("socket writes %q, want %q", got, want)
	}
}

func TestBatchConnFailedFlushFailsTheNextWrite(t *testing.T) {
	boom := errors.New("connection reset by peer")
	sc := &scriptConn{reads: strings.NewReader("C")}
	c := newBatchConn(sc, time.Second)
	markUp(t, c)
	sc.failAll = boom
	if _, err := c.Write([]byte("p1")); err != nil {
		t.Fatalf("queued write: %v", err)
	}
	// Wait for the flusher to stop without closing the socket.
	c.mu.Lock()
	for c.flushing {
		c.cond.Wait()
	}
	c.mu.Unlock()
	if _, err := c.Write([]byte("p2")); !errors.Is(err, boom) {
		t.Fatalf("write after a failed flush: %v, want %v", err, boom)
	}
}

func TestBatchConnWriteBeforeUpFailsAtOnce(t *testing.T) {
	boom := errors.New("broken pipe")
	sc := &scriptConn{reads: strings.NewReader(""), failAll: boom}
	c := newBatchConn(sc, time.Second)
	if _, err := c.Write([]byte("connect")); !errors.Is(err, boom) {
		t.Fatalf("CONNECT write: %v, want %v", err, boom)
	}
}

func TestBatchConnCloseSendsWhatIsQueued(t *testing.T) {
	sc := &scriptConn{reads: strings.NewReader("C"), entered: make(chan struct{}), gate: make(chan struct{})}
	c := newBatchConn(sc, time.Second)
	go func() { // let every write through
		for range sc.entered {
			sc.gate <- struct{}{}
		}
	}()
	markUp(t, c)
	for _, p := range []string{"p1", "disconnect"} {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	close(sc.entered)
	if got := strings.Join(sc.written(), ""); got != "p1disconnect" {
		t.Fatalf("sent before close: %q", got)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want %v", err, net.ErrClosed)
	}
}

func TestBatchConnWriterWaitsPastTheBound(t *testing.T) {
	sc := &scriptConn{reads: strings.NewReader("C"), entered: make(chan struct{}), gate: make(chan struct{})}
	c := newBatchConn(sc, time.Second)
	markUp(t, c)
	if _, err := c.Write([]byte("p1")); err != nil {
		t.Fatal(err)
	}
	<-sc.entered // the flusher holds p1 in the kernel
	big := bytes.Repeat([]byte{'x'}, maxUnsent-1)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		c.Write([]byte("yy")) // past the bound: waits for the flusher
		close(wrote)
	}()
	go func() { // p1 done; from now on every write passes
		sc.gate <- struct{}{}
		for range sc.entered {
			sc.gate <- struct{}{}
		}
	}()
	<-wrote
	c.Close() // waits for the flusher
	close(sc.entered)
	// The writer past the bound waited for the flusher to take the queue,
	// so its bytes left in a write of their own.
	got := sc.written()
	if strings.Join(got, "") != "p1"+string(big)+"yy" || got[len(got)-1] != "yy" {
		t.Fatalf("socket writes of %v bytes, want 2, then %d in chunks, then 2 alone", lens(got), len(big))
	}
}

func lens(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}

// failWrites is a working connection whose writes fail.
type failWrites struct {
	net.Conn
	err error
}

func (f failWrites) Write([]byte) (int, error) { return 0, f.err }

// A drain's window can be full with nothing more for paho to write for a
// while: a failed flush must reach paho through its reader, with the write's
// error as the reason.
func TestBatchConnFailedFlushWakesTheReader(t *testing.T) {
	boom := errors.New("write: broken pipe")
	client, broker := net.Pipe()
	defer broker.Close()
	c := newBatchConn(failWrites{client, boom}, time.Second)
	go broker.Write([]byte("C")) // CONNACK's first byte
	markUp(t, c)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16)) // paho's reader, waiting for PUBACKs
		readErr <- err
	}()
	if _, err := c.Write([]byte("p1")); err != nil {
		t.Fatalf("queued write: %v", err)
	}
	if err := <-readErr; !errors.Is(err, boom) {
		t.Fatalf("reader woke with %v, want %v", err, boom)
	}
}
