package hotplug

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// recvBufSize exceeds the largest uevent (the kernel caps its environment
// at 2 KiB, UEVENT_BUFFER_SIZE).
const recvBufSize = 16 << 10

// sockBufSize is the socket's receive buffer: a hub plugged in with
// several scanners sends dozens of events at once, and an overflow loses
// some of them (ENOBUFS).
const sockBufSize = 1 << 20

// Run listens for kernel uevents and wakes the subscribers on every
// relevant one until ctx ends; then it returns nil. When the kernel's
// events cannot be received at all it logs that once at info and
// returns nil at once: the drivers' polling backoff still finds every
// scanner, only more slowly. For the same reason a socket that fails
// later is logged at warn and Run returns nil: losing the shortcut must
// not stop the scanners.
func (w *Watcher) Run(ctx context.Context) error {
	f, err := openUevents()
	if err != nil {
		w.log.Info(unavailableMsg, "err", err)
		return nil
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		w.log.Info(unavailableMsg, "err", err)
		return nil
	}

	// The read blocks in the runtime's poller; a past deadline is what
	// ends it when ctx does. The goroutine is Run's and ends with it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			f.SetReadDeadline(time.Now())
		case <-stop:
		}
	})
	defer wg.Wait()
	defer close(stop)

	if w.onListen != nil {
		w.onListen()
	}
	buf := make([]byte, recvBufSize)
	var settle time.Time // when to wake again after a burst; zero: none due
	for {
		// The deadline is the settle time or none. It is set before
		// ctx is checked, so a cancel that raced with it is still seen.
		if err := f.SetReadDeadline(settle); err != nil {
			return w.lost(fmt.Errorf("set deadline on uevent socket: %w", err))
		}
		if ctx.Err() != nil {
			return nil
		}
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Wake()
			settle = time.Time{}
			continue
		case err != nil:
			return w.lost(fmt.Errorf("read uevent: %w", err))
		case errors.Is(rerr, unix.ENOBUFS):
			// Events were lost; one of them may have been a scanner.
			w.log.Debug("uevent socket overflowed; waking anyway")
			w.Wake()
			settle = time.Now().Add(settleDelay)
			continue
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			return w.lost(fmt.Errorf("read uevent: %w", rerr))
		}
		// Only the kernel (port id 0) sends real uevents; anything else
		// unicast to this socket is not to be trusted.
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		if w.handle(buf[:n]) {
			settle = time.Now().Add(settleDelay)
		}
	}
}

// openUevents opens a socket subscribed to the kernel's uevent multicast
// group, non-blocking and registered with the runtime's poller.
func openUevents() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	// Group 1 carries the kernel's own events; group 2 is udevd's
	// re-broadcast, which needs udevd and a different parser.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink uevent group: %w", err)
	}
	// Best effort: the default buffer still works, it only overflows
	// sooner.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockBufSize)
	return os.NewFile(uintptr(fd), "netlink-uevent"), nil
}

// lost reports a uevent socket that failed after it worked, and returns
// nil: the scanners carry on polling.
func (w *Watcher) lost(err error) error {
	w.log.Warn("kernel hotplug events lost; replugged scanners are found by polling", "err", err)
	return nil
}
