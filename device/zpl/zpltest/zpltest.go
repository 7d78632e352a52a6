// Package zpltest is a fake ZPL network printer for tests: a real TCP
// listener on loopback that records every job it receives, answers ~HS
// with a state the test sets, and can go away and come back on the same
// port.
package zpltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scangw/scangw/device/zpl"
)

// Printer is the fake printer.
type Printer struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	jobs    [][]byte
	changed chan struct{} // closed and replaced when a job arrives
	state   zpl.Status
	silent  bool
	ln      net.Listener
	conns   map[*conn]struct{}
	wg      sync.WaitGroup
}

// Start starts a printer on 127.0.0.1 at a free port; it is stopped when
// the test ends.
func Start(t testing.TB) *Printer {
	t.Helper()
	p := &Printer{t: t, changed: make(chan struct{}), conns: map[*conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zpltest: listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// Addr returns the printer's host:port, the same across Restart.
func (p *Printer) Addr() string { return p.addr }

// SetState sets what the printer answers to ~HS from now on.
func (p *Printer) SetState(s zpl.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = s
}

// SetSilent makes the printer ignore ~HS, as newer Zebra firmware does
// while media is out or the head open.
func (p *Printer) SetSilent(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = silent
}

// Jobs returns the jobs received so far, in order: each a whole format
// from ^XA to ^XZ. A format its connection ended in the middle of is no
// job, as a printer drops it; ~HS is answered between formats only.
func (p *Printer) Jobs() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.copyJobs()
}

func (p *Printer) copyJobs() [][]byte {
	out := make([][]byte, len(p.jobs))
	for i, j := range p.jobs {
		out[i] = bytes.Clone(j)
	}
	return out
}

// WaitJobs waits until at least n jobs arrived and returns all of them;
// when ctx ends first, it returns those that did and an error.
func (p *Printer) WaitJobs(ctx context.Context, n int) ([][]byte, error) {
	for {
		p.mu.Lock()
		if len(p.jobs) >= n {
			defer p.mu.Unlock()
			return p.copyJobs(), nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			jobs := p.Jobs()
			return jobs, fmt.Errorf("zpltest: %d of %d jobs: %w", len(jobs), n, ctx.Err())
		}
	}
}

// Stop takes the printer away: it closes the listener and every
// connection, after recording everything the kernel had received on it,
// so the sender of a job either finds the connection closed after the
// job was recorded or reset (a connection still waiting to be accepted is
// reset). Jobs received before are kept. Stop on a stopped printer does
// nothing.
func (p *Printer) Stop() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	for c := range p.conns {
		c.stopping.Store(true)
		// Wakes the reading goroutine, which drains what the kernel
		// holds and closes.
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.wg.Wait()
}

// Restart brings a stopped printer back on the same address. Call it
// from the test's goroutine: it fails the test if the port is taken.
func (p *Printer) Restart() {
	p.t.Helper()
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("zpltest: restart on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Printer) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return // closed by Stop
			}
			c := &conn{p: p, nc: nc.(*net.TCPConn)}
			p.mu.Lock()
			if p.ln != ln {
				p.mu.Unlock()
				nc.Close()
				return
			}
			p.conns[c] = struct{}{}
			p.wg.Go(c.run)
			p.mu.Unlock()
		}
	})
}

// conn is one connection to the printer.
type conn struct {
	p        *Printer
	nc       *net.TCPConn
	stopping atomic.Bool
	buf      []byte // received, not yet a whole job
	inJob    bool
}

func (c *conn) run() {
	defer func() {
		c.nc.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	}()
	b := make([]byte, 32<<10)
	for {
		n, err := c.nc.Read(b)
		c.take(b[:n])
		if err == nil {
			continue
		}
		if c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			c.nc.SetReadDeadline(time.Time{})
			drain(c.nc, b, c.take)
		}
		return
	}
}

// take splits the stream into jobs (^XA … ^XZ, several to a connection
// or one over several reads) and answers ~HS between them.
func (c *conn) take(b []byte) {
	c.buf = append(c.buf, b...)
	for {
		if !c.inJob {
			xa, hs := bytes.Index(c.buf, []byte("^XA")), bytes.Index(c.buf, []byte("~HS"))
			switch {
			case hs >= 0 && (xa < 0 || hs < xa):
				c.buf = c.buf[hs+3:]
				c.hostStatus()
				continue
			case xa >= 0:
				c.buf, c.inJob = c.buf[xa:], true
			default:
				// Keep what could be the start of a command.
				c.buf = c.buf[max(0, len(c.buf)-2):]
				return
			}
		}
		xz := bytes.Index(c.buf, []byte("^XZ"))
		if xz < 0 {
			return
		}
		job := bytes.Clone(c.buf[:xz+3])
		c.buf, c.inJob = c.buf[xz+3:], false
		c.p.mu.Lock()
		c.p.jobs = append(c.p.jobs, job)
		close(c.p.changed)
		c.p.changed = make(chan struct{})
		c.p.mu.Unlock()
	}
}

func (c *conn) hostStatus() {
	c.p.mu.Lock()
	st, silent := c.p.state, c.p.silent
	c.p.mu.Unlock()
	if !silent {
		c.nc.Write(HostStatus(st))
	}
}

// HostStatus returns the ~HS reply a printer in state s sends, laid out
// as the ZPL II Programming Guide gives it; the password reads 0000.
func HostStatus(s zpl.Status) []byte {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return fmt.Appendf(nil,
		"\x02%03d,%d,%d,%04d,%03d,%d,%d,%d,000,%d,%d,%d\x03\r\n"+
			"\x02%03d,0,%d,%d,%d,%d,%d,%d,%08d,%d,%03d\x03\r\n"+
			"\x020000,%d\x03\r\n",
		s.CommSettings, b(s.PaperOut), b(s.Paused), s.LabelLength, s.FormatsInBuffer,
		b(s.BufferFull), b(s.CommDiagnostic), b(s.PartialFormat), b(s.CorruptRAM), b(s.UnderTemp), b(s.OverTemp),
		s.FunctionSettings, b(s.HeadOpen), b(s.RibbonOut), b(s.ThermalTransfer), s.PrintMode, s.PrintWidthMode,
		b(s.LabelWaiting), s.LabelsRemaining, b(s.FormatWhilePrinting), s.GraphicsStored,
		b(s.StaticRAM))
}
