package uplink

import (
	"bufio"
	"context"
	"net"
)

// readBufSize holds a few hundred PUBACKs: the broker sends them back to
// back while a window drains.
const readBufSize = 4 << 10

// bufferedConn reads through a buffer. paho parses each packet straight
// off the connection, one small Read per field: three read calls (three
// syscalls on TCP) for every 4-byte PUBACK. Through a buffer a burst of
// acks costs one.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialTCP opens a plain connection within the connect timeout.
func (u *Uplink) dialTCP(host string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.ConnectTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c), nil
}
