package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The sd_notify protocol (sd_notify(3)): newline-separated VAR=value
// lines in one datagram to the unix socket systemd names in NOTIFY_SOCKET.
// The unit is Type=notify with NotifyAccess=main, so only this process's
// datagrams count (systemd checks the sender's pid from SCM_CREDENTIALS,
// which the kernel attaches).

// notifyWriteTimeout bounds one datagram's send: a manager too busy to
// drain its socket must not hold the daemon, whose pings then stop by
// themselves.
const notifyWriteTimeout = time.Second

// notifier sends state changes to systemd. It is made once from the
// environment (newNotifier); when systemd did not start the process with
// NOTIFY_SOCKET, every method does nothing. It is safe for concurrent
// use.
type notifier struct {
	addr *net.UnixAddr // nil: no NOTIFY_SOCKET, nothing is sent
	// watchdog is the interval systemd wants WATCHDOG=1 within; 0 when it
	// wants none of this process.
	watchdog time.Duration

	mu   sync.Mutex
	conn *net.UnixConn // kept between sends; nil until the first

	ready atomic.Bool // READY=1 was sent: the start-up is over
}

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through
// getenv, for the process pid. A value it cannot use is an error; the
// notifier it returns with one still sends what it can (nothing for a
// bad socket, no watchdog for a bad WATCHDOG_USEC).
func newNotifier(getenv func(string) string, pid int) (*notifier, error) {
	n := &notifier{}
	var errs []error
	addr, err := notifyAddr(getenv("NOTIFY_SOCKET"))
	if err != nil {
		errs = append(errs, err)
	}
	n.addr = addr
	if n.watchdog, err = watchdogInterval(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), pid); err != nil {
		errs = append(errs, err)
	}
	if n.addr == nil {
		n.watchdog = 0 // nobody to ping
	}
	return n, errors.Join(errs...)
}

// notifyAddr parses NOTIFY_SOCKET: an absolute path, or "@name" for an
// abstract socket (which Go's net package maps to a leading NUL). "" is no
// socket. Other forms (systemd 254's "vsock:") are refused: this build
// cannot send to them.
func notifyAddr(s string) (*net.UnixAddr, error) {
	switch {
	case s == "":
		return nil, nil
	case s[0] != '/' && s[0] != '@':
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: not an absolute path or an abstract socket (@name)", s)
	case s == "@":
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: abstract socket without a name", s)
	case len(s) > len(unix.RawSockaddrUnix{}.Path) || len(s) == len(unix.RawSockaddrUnix{}.Path) && s[0] == '/':
		// A path needs room for its terminating NUL; an abstract name not.
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: longer than a unix socket address can be", s)
	case strings.IndexByte(s, 0) >= 0:
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: holds a NUL byte", s)
	}
	return &net.UnixAddr{Name: s, Net: "unixgram"}, nil
}

// watchdogInterval parses WATCHDOG_USEC and WATCHDOG_PID the way
// sd_watchdog_enabled(3) does: the interval within which systemd wants a
// WATCHDOG=1, or 0 when it wants none of process self (no WATCHDOG_USEC,
// or a WATCHDOG_PID that names another process: the variables were
// inherited from a parent that systemd watches).
func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 || u == math.MaxUint64 { // 0 and "infinity" are no interval
		return 0, fmt.Errorf("WATCHDOG_USEC=%q: not a number of microseconds", usec)
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID=%q: not a process id", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	// Beyond ~292 years in ns: as good as never, but still pinged.
	return time.Duration(min(u, math.MaxInt64/uint64(time.Microsecond))) * time.Microsecond, nil
}

// WatchdogInterval is the interval systemd wants a WATCHDOG=1 within, 0
// for none.
func (n *notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Ready says the daemon is up, at start and again after a reload.
func (n *notifier) Ready() error {
	n.ready.Store(true)
	return n.send("READY=1")
}

// Started reports whether the daemon said READY=1: a reload before that
// is part of the start-up and says nothing of its own (its READY=1 would
// come before the stations are ready).
func (n *notifier) Started() bool { return n.ready.Load() }

// Reloading says a reload began. systemd wants the time with it (the
// reload is matched to the READY=1 that follows by it): CLOCK_MONOTONIC
// in µs, the clock systemd's own timestamps use.
func (n *notifier) Reloading() error {
	if n.addr == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: read CLOCK_MONOTONIC: %w", err)
	}
	return n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(ts.Nano()/int64(time.Microsecond), 10))
}

// Stopping says the daemon is shutting down.
func (n *notifier) Stopping() error { return n.send("STOPPING=1") }

// Status sets the one-line status `systemctl status` shows.
func (n *notifier) Status(text string) error {
	// A newline would end the line and start another variable.
	return n.send("STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(text))
}

// Watchdog sends WATCHDOG=1: the daemon is still making progress.
func (n *notifier) Watchdog() error { return n.send("WATCHDOG=1") }

// send sends the lines as one datagram. The socket is kept from one send
// to the next; a failed send is tried once more on a new one, since the
// manager re-creates its socket when it re-executes (daemon-reexec).
func (n *notifier) send(lines ...string) error {
	if n.addr == nil {
		return nil
	}
	msg := []byte(strings.Join(lines, "\n"))
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if n.conn == nil {
			if n.conn, err = net.DialUnix("unixgram", nil, n.addr); err != nil {
				continue
			}
		}
		n.conn.SetWriteDeadline(time.Now().Add(notifyWriteTimeout))
		if _, err = n.conn.Write(msg); err == nil {
			return nil
		}
		n.conn.Close()
		n.conn = nil
	}
	return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
}
