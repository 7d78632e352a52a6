package buffer

import (
	"context"
	"errors"
	"time"
)

// OpenWait opens the buffer like Open, waiting out what is not the
// directory's fault. Proven corruption is healed by Open (with
// Options.Heal); anything else that stops it opening — another scangw
// holding the directory, permissions, a full or failing disk — is not
// proof of damage, so nothing on disk is touched: it is logged and
// retried, backing off to every 30 s, until it clears or ctx ends. A
// directory of a newer format is refused at once: waiting cannot fix it.
func OpenWait(ctx context.Context, opts Options) (*Buffer, error) {
	wait := time.Second
	for {
		b, err := Open(opts)
		if err == nil || errors.Is(err, ErrNewerFormat) {
			return b, err
		}
		if opts.Logger != nil {
			opts.Logger.Error("buffer cannot be opened; retrying", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
