package uplink

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// readBufSize holds a few hundred PUBACKs: the broker sends them back
	// to back while a window drains.
	readBufSize = 4 << 10
	// maxUnsent bounds what waits for the kernel; a writer past it waits,
	// as it would on a full socket.
	maxUnsent = 256 << 10
	// closeFlushWait is how long Close lets the last packets (DISCONNECT)
	// leave before it closes the socket under them.
	closeFlushWait = time.Second
	// writeChunk is what one write deadline covers: as much as paho gave a
	// single packet, so a slow link times out no sooner than it did.
	writeChunk = 64 << 10
)

// batchConn sits between paho and the socket and batches both ways.
//
// Reads go through a buffer. paho parses each packet straight off the
// connection, one small Read per field: three read calls, three syscalls,
// for every 4-byte PUBACK. Through a buffer a burst of acks costs one.
//
// Writes are gathered. paho writes every packet with its own call, so a
// window of publishes released by a burst of PUBACKs costs a syscall and a
// broker wake-up each, which on a two-core board is most of a drain's CPU.
// Once the session is up, Write only queues the bytes; one flusher at a
// time writes out everything queued while its previous write was in the
// kernel. Nothing is acknowledged on the strength of a write (only a PUBACK
// deletes a message), so a write that fails after Write returned loses
// nothing: the flusher wakes paho's reader with the error (paho ignores a
// socket closed under it, and it may have nothing more to write for a
// while), paho reports the connection lost, and the unacknowledged
// messages are resent on the next one.
//
// Until the first byte arrives from the broker (CONNACK) writes go straight
// through: CONNECT's failure must reach paho as it happens, and the TLS
// alert reading in alertConn relies on it.
type batchConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration
	up           atomic.Bool // the broker has answered: writes are batched

	mu       sync.Mutex
	cond     sync.Cond // signalled when the flusher takes the queue or stops
	unsent   []byte
	spare    []byte
	flushing bool          // a flusher owns the socket's write side
	idle     chan struct{} // closed when the current flusher stops
	err      error         // the first failed write
	closed   bool
}

func newBatchConn(c net.Conn, writeTimeout time.Duration) *batchConn {
	bc := &batchConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize), writeTimeout: writeTimeout}
	bc.cond.L = &bc.mu
	return bc
}

func (c *batchConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.up.Load() {
		c.up.Store(true)
	}
	if err != nil {
		c.mu.Lock()
		if c.err != nil {
			err = c.err // the reason, not the wake-up's timeout
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *batchConn) Write(p []byte) (int, error) {
	if !c.up.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.unsent) > 0 && len(c.unsent)+len(p) > maxUnsent {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	c.unsent = append(c.unsent, p...)
	if !c.flushing {
		c.flushing = true
		c.idle = make(chan struct{})
		go c.flush(c.idle)
	}
	return len(p), nil
}

// SetWriteDeadline applies until the session is up; after that the
// flusher sets its own deadline for each write (paho's would land between
// the flusher's deadline and its write).
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	if !c.up.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

func (c *batchConn) flush(idle chan struct{}) {
	defer close(idle)
	for {
		c.mu.Lock()
		out := c.unsent
		c.unsent, c.spare = c.spare[:0], out
		if len(out) == 0 {
			c.flushing = false
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if err := c.write(out); err != nil {
			c.mu.Lock()
			c.err = err
			c.flushing = false
			c.cond.Broadcast()
			c.mu.Unlock()
			c.Conn.SetReadDeadline(time.Now()) // wake paho's reader
			return
		}
	}
}

// write writes out in chunks, each with its own deadline, and clears the
// deadline after: a TLS connection's reader may itself write (a key update
// reply) and must not meet a stale one.
func (c *batchConn) write(out []byte) error {
	for len(out) > 0 {
		n := min(len(out), writeChunk)
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
		if _, err := c.Conn.Write(out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return c.Conn.SetWriteDeadline(time.Time{})
}

// Close lets queued packets leave, for a bounded time, then closes.
func (c *batchConn) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	if idle != nil {
		t := time.NewTimer(closeFlushWait)
		select {
		case <-idle:
		case <-t.C:
		}
		t.Stop()
	}
	return c.Conn.Close()
}

// dialTCP opens a plain connection within the connect timeout.
func (u *Uplink) dialTCP(host string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.ConnectTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return newBatchConn(c, u.cfg.WriteTimeout), nil
}
