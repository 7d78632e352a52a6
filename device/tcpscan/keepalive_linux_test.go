package tcpscan

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKeepAlive: the gateway's end of every reader connection, dialled or
// accepted, probes a silent peer on the documented schedule.
func TestKeepAlive(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := baseConfig()
			next := m.setup(t, &cfg)
			r := startRig(t, cfg, nil)
			next(t, r)
			waitFor(t, "connected", r.s.Connected)
			r.s.mu.Lock()
			tc, ok := r.s.conn.(*net.TCPConn)
			r.s.mu.Unlock()
			if !ok {
				t.Fatalf("connection is %T, want *net.TCPConn", r.s.conn)
			}
			raw, err := tc.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]struct{ level, opt, v int }{
				"SO_KEEPALIVE":  {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
				"TCP_KEEPIDLE":  {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAliveIdle.Seconds())},
				"TCP_KEEPINTVL": {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval.Seconds())},
				"TCP_KEEPCNT":   {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
			}
			err = raw.Control(func(fd uintptr) {
				for name, o := range want {
					got, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
					if err != nil || got != o.v {
						t.Errorf("%s = %d (%v), want %d", name, got, err, o.v)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
