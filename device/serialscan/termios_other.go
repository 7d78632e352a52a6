//go:build !linux

package serialscan

// holdCooked cannot inspect the tty here: its input counts as cooked and
// is dropped at open (see Scanner.open).
func holdCooked(string) (cooked bool, release func()) { return true, func() {} }
