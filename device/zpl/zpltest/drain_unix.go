//go:build unix

package zpltest

import (
	"net"
	"syscall"
)

// drain hands take every byte the kernel holds for c without waiting
// for more: the bytes it acknowledged to the sender but the fake printer
// had not read yet.
func drain(c *net.TCPConn, b []byte, take func([]byte)) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), b)
			return true // the socket is non-blocking: EAGAIN ends the drain
		}); err != nil || rerr != nil || n <= 0 {
			return
		}
		take(b[:n])
	}
}
