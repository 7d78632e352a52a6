package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/device/serialsim"
)

// crashLine is a crash-test scanner's end of its link to the daemon: a
// serial line on a pty, or a TCP connection the daemon dials.
type crashLine interface {
	// Send types code and waits for its feedback byte (see
	// serialsim.Pty.Send).
	Send(ctx context.Context, code, terminator string, timeout time.Duration) (byte, error)
	// Drain discards feedback a killed daemon left behind.
	Drain() (int, error)
	// Flush drops what the killed daemon left unread.
	Flush() error
	Path() string
	// wake ends a Send waiting for feedback (the stream is stopping).
	wake()
	// config is the scanner's entry in the daemon's config.
	config(id string) string
}

// ptyLine is a serial scanner in ACK/NAK mode.
type ptyLine struct{ *serialsim.Pty }

func (p ptyLine) wake() { p.Master().SetReadDeadline(time.Now()) }

func (p ptyLine) config(id string) string {
	return fmt.Sprintf(`      - {id: %s, type: serial, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, id, p.Path())
}

// tcpLine is a fixed reader in host-acknowledge mode that the daemon dials:
// it sends a result and waits for the ACK; when the connection dies under
// it (the daemon was killed), it sends the result again on the next one,
// as a reader does.
type tcpLine struct {
	ln *net.TCPListener

	mu   sync.Mutex
	conn net.Conn
}

func newTCPLine(t *testing.T) *tcpLine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &tcpLine{ln: ln.(*net.TCPListener)}
	t.Cleanup(func() { ln.Close(); l.Flush() })
	return l
}

func (l *tcpLine) Path() string { return "tcp " + l.ln.Addr().String() }

func (l *tcpLine) config(id string) string {
	return fmt.Sprintf(`      - {id: %s, type: tcp, connect: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, id, l.ln.Addr().String())
}

// Drain has nothing to do: a new daemon comes on a new connection.
func (l *tcpLine) Drain() (int, error) { return 0, nil }

// Flush drops the connection of a killed daemon.
func (l *tcpLine) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
	return nil
}

func (l *tcpLine) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.SetReadDeadline(time.Now())
	}
}

// current returns the daemon's connection, waiting for it to dial.
func (l *tcpLine) current(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	for c == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Short deadlines let ctx end the wait; the daemon dials when it
		// is up.
		l.ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
		nc, err := l.ln.Accept()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.conn, c = nc, nc
		l.mu.Unlock()
	}
	return c, nil
}

func (l *tcpLine) drop(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == c {
		c.Close()
		l.conn = nil
	}
}

func (l *tcpLine) Send(ctx context.Context, code, terminator string, timeout time.Duration) (byte, error) {
	for {
		c, err := l.current(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := c.Write([]byte(code + terminator)); err != nil {
			l.drop(c)
			continue
		}
		c.SetReadDeadline(time.Now().Add(timeout))
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		var ne net.Error
		switch {
		case err == nil:
			return b[0], nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.As(err, &ne) && ne.Timeout():
			return 0, fmt.Errorf("%w after %v", serialsim.ErrNoFeedback, timeout)
		default:
			// The daemon died under the connection: send it again to the
			// next one.
			l.drop(c)
		}
	}
}
