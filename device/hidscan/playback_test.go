package hidscan

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A recording is one testdata/*.hid case: the config lines and the report
// sequence a scanner sent. The format (see testdata/README.md):
//
//	# comment                      ignored; also after a report
//	% key [value]                  config: mode, layout, terminators, gap,
//	                               no-aim, max-scan
//	02 00 04 00 00 00 00 00        one input report, as hex bytes
//	@+80ms                         the next report comes 80 ms after the
//	                               previous one (default 1 ms)
//	!unplug                        the next read fails, as on an unplug
type recording struct {
	cfg   Config
	steps []step
}

// step is one ReadTimeout result the fake device plays back.
type step struct {
	after  time.Duration // virtual time since the previous step
	report []byte
	err    error
}

// errUnplugged is what a played "!unplug" step returns; hidapi's libusb
// backend has no better text either.
var errUnplugged = errors.New("hidapi: hid_error is not implemented yet")

func loadRecording(t testing.TB, path string) recording {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open recording: %v", err)
	}
	defer f.Close()
	return parseRecording(t, path, f)
}

// parseRecording parses a recording in the testdata format from r; name
// is for messages.
func parseRecording(t testing.TB, path string, r io.Reader) recording {
	t.Helper()
	// A short read timeout keeps the idle device's real-time waits, and
	// so the test, short; virtual time does not depend on it.
	rec := recording{cfg: Config{ID: "s1", Match: Match{VID: 0x0c2e, PID: 0x0b61}, ReadTimeout: 10 * time.Millisecond}}
	next := time.Millisecond
	sc := bufio.NewScanner(r)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		fail := func(format string, args ...any) {
			t.Fatalf("%s:%d: %s", path, ln, fmt.Sprintf(format, args...))
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "%"):
			key, val, _ := strings.Cut(strings.TrimSpace(line[1:]), " ")
			if err := rec.cfg.set(key, strings.TrimSpace(val)); err != nil {
				fail("%v", err)
			}
		case strings.HasPrefix(line, "@+"):
			d, err := time.ParseDuration(line[2:])
			if err != nil {
				fail("bad offset: %v", err)
			}
			next = d
		case line == "!unplug":
			rec.steps = append(rec.steps, step{after: next, err: errUnplugged})
			next = time.Millisecond
		default:
			b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
			if err != nil {
				fail("bad report: %v", err)
			}
			rec.steps = append(rec.steps, step{after: next, report: b})
			next = time.Millisecond
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return rec
}

// set applies one "% key value" line.
func (c *Config) set(key, val string) error {
	var err error
	switch key {
	case "mode":
		c.Mode = val
	case "layout":
		c.Layout = val
	case "terminators":
		c.Terminators = strings.Split(val, ",")
	case "gap":
		c.Gap, err = time.ParseDuration(val)
	case "no-aim":
		c.NoAIM = true
	case "max-scan":
		c.MaxScan, err = strconv.Atoi(val)
	default:
		return fmt.Errorf("unknown config key %q", key)
	}
	return err
}

// fakeClock is virtual time: the playback device moves it forward, so a
// 300 ms gap passes without the test waiting 300 ms.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var clockStart = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{t: clockStart} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// playback is a fake Device that plays recorded steps in order. Once they
// are used up it behaves like an idle scanner: each read times out, the
// first after a virtual minute (so a pending gap completes), the third and
// later ones in real time too. A test
// that leaves recorded reports unread fails: the decoder never saw part of
// what the case claims to test.
type playback struct {
	clock *fakeClock

	mu     sync.Mutex
	steps  []step
	next   int
	closed bool
	writes [][]byte
	// writeErr, if set, fails writes.
	writeErr error
	// idleReads counts reads after the last step. The second one shows
	// the driver has handled the last report and the gap flush the first
	// timeout allowed.
	idleReads int
	idle      chan struct{}
	// stop ends real-time waiting for reads past the end.
	stop chan struct{}
	// reading is set during ReadTimeout; a Close meanwhile would be a
	// use after free in hidapi, and is recorded in misuse.
	reading bool
	misuse  []string
}

func newPlayback(t *testing.T, steps []step, clock *fakeClock) *playback {
	p := &playback{clock: clock, steps: steps, idle: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() {
		close(p.stop)
		p.mu.Lock()
		defer p.mu.Unlock()
		if left := len(p.steps) - p.next; left > 0 {
			t.Errorf("playback: %d of %d recorded reports left unread", left, len(p.steps))
		}
		for _, m := range p.misuse {
			t.Errorf("playback: %s", m)
		}
	})
	return p
}

func (p *playback) ReadTimeout(b []byte, ms int) (int, error) {
	if ms <= 0 {
		// hidapi would spin (0) or block forever (-1): the driver must
		// never ask for that.
		return 0, fmt.Errorf("playback: ReadTimeout(%d ms)", ms)
	}
	p.mu.Lock()
	if p.closed {
		p.misuse = append(p.misuse, "read after close")
		p.mu.Unlock()
		return 0, errors.New("playback: read after close")
	}
	if p.reading {
		p.misuse = append(p.misuse, "concurrent reads")
	}
	p.reading = true
	defer func() {
		p.mu.Lock()
		p.reading = false
		p.mu.Unlock()
	}()
	if p.next < len(p.steps) {
		st := p.steps[p.next]
		p.next++
		p.mu.Unlock()
		p.clock.advance(st.after)
		if st.err != nil {
			return 0, st.err
		}
		return copy(b, st.report), nil
	}
	p.idleReads++
	n := p.idleReads
	if n == 2 {
		close(p.idle)
	}
	p.mu.Unlock()
	if n == 1 {
		// The scanner has gone quiet: let a long time pass at once,
		// so that any inter-key gap ends.
		p.clock.advance(time.Minute)
	} else {
		p.clock.advance(time.Duration(ms) * time.Millisecond)
	}
	if n > 2 {
		// A real device blocks for the timeout; so does the fake, so an
		// idle driver does not spin.
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.stop:
		}
	}
	return 0, nil
}

func (p *playback) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("playback: write after close")
	}
	if p.writeErr != nil {
		return 0, p.writeErr
	}
	p.writes = append(p.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (p *playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.misuse = append(p.misuse, "closed twice")
		return errors.New("playback: closed twice")
	}
	if p.reading {
		p.misuse = append(p.misuse, "closed during a read")
	}
	p.closed = true
	return nil
}

func (p *playback) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *playback) written() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.writes...)
}
