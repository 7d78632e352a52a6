// Package serialsim plays a serial barcode scanner on a pseudo-terminal:
// the gateway opens the pty's slave path exactly as it opens /dev/ttyACM0,
// and the simulator types scans into the master and listens for the
// feedback byte, the way a scanner in ACK/NAK (host acknowledge) mode does.
// The demo and the integration tests use it; nothing here is a fake of the
// driver under test.
package serialsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Pty is a pseudo-terminal pair whose slave stands in for a scanner's tty.
type Pty struct {
	master *os.File
	slave  *os.File
	path   string
}

// Open makes a pty in raw mode. The slave is put in raw mode at once: a new
// slave starts cooked (ICRNL turns "\r" into "\n", ECHO sends bytes back),
// and bytes written before the driver opens the port would be mangled.
func Open() (*Pty, error) { return open(true) }

// OpenCooked makes a pty left in the kernel's cooked default, as a real
// tty is after a boot or a replug: what is written before the gateway
// configured the port is mangled (CR becomes LF), which the driver must
// not let through.
func OpenCooked() (*Pty, error) { return open(false) }

func open(raw bool) (*Pty, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	fail := func(err error) (*Pty, error) {
		m.Close()
		s.Close()
		return nil, err
	}
	if raw {
		if err := MakeRaw(s); err != nil {
			return fail(err)
		}
	}
	// pty.Open calls Fd() on the master, which takes it out of the runtime
	// poller (no read deadlines; Close waits for a blocked Read). A
	// non-blocking duplicate is pollable again.
	fd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		return fail(fmt.Errorf("dup master: %w", err))
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fail(fmt.Errorf("nonblock master: %w", err))
	}
	m.Close()
	return &Pty{master: os.NewFile(uintptr(fd), "/dev/ptmx"), slave: s, path: s.Name()}, nil
}

// MakeRaw puts the tty s in raw mode (8N1, no echo, no line editing, no
// CR/NL translation), as a serial driver does.
func MakeRaw(s *os.File) error {
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// Path is the slave's device path, to put in the gateway's config.
func (p *Pty) Path() string { return p.path }

// Master is the scanner's end: write scans, read feedback.
func (p *Pty) Master() *os.File { return p.master }

// Flush drops input the gateway has not read yet. A scanner's cable that was
// unplugged (or a gateway killed) leaves unread bytes in the pty; a scanner
// that retransmits must not also have them read.
func (p *Pty) Flush() error {
	return unix.IoctlSetInt(int(p.slave.Fd()), unix.TCFLSH, unix.TCIFLUSH)
}

// Close hangs the line up, as pulling a USB scanner does.
func (p *Pty) Close() error {
	err := p.master.Close()
	if e := p.slave.Close(); err == nil {
		err = e
	}
	return err
}

// ErrNoFeedback reports that the gateway did not answer within the timeout.
var ErrNoFeedback = errors.New("no feedback from gateway")

// Send types code followed by terminator and waits for one feedback byte.
// Feedback bytes that arrive late for an earlier scan are indistinguishable
// from the answer to this one, as on a real line; callers that retransmit
// should Drain before sending again.
func (p *Pty) Send(ctx context.Context, code, terminator string, timeout time.Duration) (byte, error) {
	if _, err := p.master.Write([]byte(code + terminator)); err != nil {
		return 0, fmt.Errorf("type scan: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.master.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var b [1]byte
	for {
		n, err := p.master.Read(b[:])
		if n == 1 {
			return b[0], nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, ErrNoFeedback
		}
		if err != nil {
			return 0, fmt.Errorf("read feedback: %w", err)
		}
	}
}

// Drain discards feedback bytes already waiting on the master, without
// waiting for more, and returns how many it discarded. A scanner that
// retransmits must not take a late answer to its previous try for the
// answer to this one.
func (p *Pty) Drain() (int, error) {
	// A passed deadline would fail the read before it reaches the kernel.
	if err := p.master.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	rc, err := p.master.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var b [64]byte
	err = rc.Read(func(fd uintptr) bool {
		for { // the master is non-blocking: read until EAGAIN
			n, err := unix.Read(int(fd), b[:])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if n <= 0 || err != nil {
				return true
			}
			total += n
		}
	})
	return total, err
}
