package hotplug

import (
	"log/slog"
	"sync"
	"time"
)

// settleDelay is how long after the last relevant event subscribers are
// woken a second time. The kernel event comes before udevd has applied
// its rules: a /dev/serial/by-id symlink or the permissions of a
// /dev/bus/usb node may still be missing when the first wake makes a
// driver retry, and that retry fails. The second wake, once the burst of
// events for a plug-in has gone quiet, catches what udevd finished since.
const settleDelay = 500 * time.Millisecond

// unavailableMsg is logged once when no kernel events can be had.
const unavailableMsg = "kernel hotplug events unavailable; replugged scanners are found by polling"

// Watcher wakes its subscribers when the kernel reports a device that a
// scanner may be. The zero value is not usable; call New.
type Watcher struct {
	log *slog.Logger
	// onListen, if set, is called once Run listens; tests use it to
	// cancel a Run that is blocked in a read.
	onListen func()

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// New returns a Watcher that logs to log, which may be nil to discard
// logs.
func New(log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{log: log, subs: map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that receives after each relevant event,
// and a func that ends the subscription. The channel holds one wake: a
// subscriber that has not taken it yet misses nothing by not taking the
// next ones, as a wake only means "look again". The channel is never
// closed, so a nil-safe receive in a select stays quiet after
// unsubscribing. Subscribe may be called before, during or after Run.
func (w *Watcher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.subs, ch)
			w.mu.Unlock()
		})
	}
}

// Wake wakes every subscriber as a relevant kernel event would. It never
// blocks. Run calls it; tests and simulators may call it directly.
func (w *Watcher) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake is already pending; one is enough
		}
	}
}

// handle acts on one datagram from the kernel.
func (w *Watcher) handle(b []byte) (wake bool) {
	ev, err := ParseUevent(b)
	if err != nil {
		w.log.Debug("ignoring uevent", "err", err)
		return false
	}
	if !relevant(ev) {
		return false
	}
	w.log.Debug("device event", "action", ev.Action, "subsystem", ev.Subsystem, "devname", ev.DevName, "devpath", ev.DevPath)
	w.Wake()
	return true
}
