//go:build !linux

package hotplug

import "context"

// Run returns nil at once: kernel uevents are a Linux feature, and
// elsewhere the drivers find replugged scanners by polling.
func (w *Watcher) Run(ctx context.Context) error {
	w.log.Info(unavailableMsg)
	return nil
}
