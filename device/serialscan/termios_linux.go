package serialscan

import "golang.org/x/sys/unix"

// holdCooked opens path to learn whether its tty is in cooked mode
// (canonical input, or CR/NL translation), and if so makes it raw at
// once, to keep the window short in which arriving bytes are mangled.
// The descriptor is held until release, so the settings and what was
// received stay put until the driver's own open has taken over. A path
// that cannot be inspected counts as cooked: dropping its input is the
// safe side.
func holdCooked(path string) (cooked bool, release func()) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, func() {}
	}
	release = func() { unix.Close(fd) }
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return true, release
	}
	if tio.Lflag&unix.ICANON == 0 && tio.Iflag&(unix.ICRNL|unix.INLCR|unix.IGNCR) == 0 {
		return false, release
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	return true, release
}
