//go:build !linux

package zpl

import "net"

// unacked cannot tell outside Linux: a printer that keeps the connection
// open then fails Send.
func unacked(net.Conn) (int, bool) { return 0, false }
