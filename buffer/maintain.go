package buffer

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Maintenance cadence.
const (
	maintainEvery = 5 * time.Second
	// quietFor is how long no scan must have been appended before space is
	// reclaimed: reclaiming pauses writes for a moment.
	quietFor = 30 * time.Second
)

// Run does the buffer's housekeeping until ctx ends: it measures disk use
// for the limits, warns at the high-water mark, and gives space back once a
// backlog has drained (dropping the queue's tombstones, value-log GC). It
// does not own the committer, which Open starts and Close stops: appends
// work without Run, and keep working after Run returned, until Close (see
// the package comment).
func (b *Buffer) Run(ctx context.Context) error {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	high := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		b.refreshDisk()
		if h := b.highWater(); h != high {
			high = h
			if h {
				b.log.Warn("buffer above high-water mark: the uplink is not keeping up; scans will be refused when full",
					"depth", b.Depth(), "limits", b.opts.Limits)
			} else {
				b.log.Info("buffer back below high-water mark", "depth", b.Depth())
			}
		}
		if b.m != nil {
			b.m.setHighWater(high)
		}
		if time.Since(time.Unix(0, b.lastAppend.Load())) >= quietFor {
			if _, err := b.Reclaim(ctx); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				b.log.Warn("buffer space reclaim failed", "err", err)
			}
		}
	}
}

// Reclaim gives disk space back once the queue is empty: it drops the
// queue's key range (the tombstones of every delivered message) and runs
// value-log GC. It does nothing while messages wait, or when nothing was
// appended since it last ran. It reports whether it dropped anything.
func (b *Buffer) Reclaim(ctx context.Context) (bool, error) {
	dropped := false
	err := b.onCommitter(ctx, func() error {
		b.flushDeletes() // acknowledged deletes first: they may empty the queue
		b.mu.Lock()
		empty := b.depth.Load() == 0 && len(b.pendingDel) == 0
		since := b.nextPos - b.dropMark
		b.mu.Unlock()
		if !empty || since == 0 {
			return nil
		}
		// Nothing writes while the committer runs this, so the range
		// cannot gain a message under our feet.
		//
		// Badger's DropPrefix does nothing unless a live key has the
		// prefix (filterPrefixesToDrop skips deleted keys), and an empty
		// queue holds only tombstones: store a marker at position 0,
		// which no message uses and no reader looks at, for the drop to
		// take with the rest.
		if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(queueKey(0), nil) }); err != nil {
			return err
		}
		if err := b.db.DropPrefix(prefixQueue); err != nil {
			return err
		}
		if err := b.db.Flatten(1); err != nil {
			return err
		}
		b.mu.Lock()
		b.dropMark = b.nextPos
		b.low = b.nextPos
		clear(b.deletedHigh)
		b.mu.Unlock()
		dropped = true
		return nil
	})
	if err != nil {
		return false, err
	}
	for {
		err := b.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			break
		}
		if err != nil {
			return dropped, err
		}
	}
	if dropped {
		b.refreshDisk()
		b.log.Info("buffer space reclaimed", "disk_bytes", b.diskUsed())
	}
	return dropped, nil
}

func (b *Buffer) diskUsed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.disk.used
}
