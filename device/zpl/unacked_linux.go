package zpl

import (
	"net"

	"golang.org/x/sys/unix"
)

// unacked returns the bytes of c's stream the peer has not acknowledged
// yet, the FIN counting as one (SIOCOUTQ, tcp(7): write_seq - snd_una).
func unacked(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		return 0, false
	}
	return n, ierr == nil
}
