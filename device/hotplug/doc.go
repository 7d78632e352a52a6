// Package hotplug tells scanner drivers when a device may have appeared,
// so that a replugged scanner is reopened at once instead of after the
// driver's reopen backoff (up to ten seconds).
//
// The kernel announces every device change as a uevent: a datagram
// "ACTION@DEVPATH" followed by NUL-terminated KEY=VALUE pairs, multicast
// on a NETLINK_KOBJECT_UEVENT socket (group 1). A Watcher reads them and,
// on an "add" or "bind" in a subsystem a scanner appears in (usb, tty,
// hidraw, usbmisc), wakes every subscriber. It does not tell which device
// arrived: each driver simply retries its own open, which already knows
// how to find its device.
//
// Kernel events are a shortcut, never a dependency. Where the socket
// cannot be opened (an unprivileged container, a kernel without netlink,
// another OS), Run says so once and returns nil, and the drivers find
// their scanners by polling, as before.
package hotplug
