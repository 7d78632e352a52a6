package buffer

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// The audit window keeps a copy of each delivered message, under its queue
// position, for Options.AuditWindow (a Badger TTL bounds it). Resend puts
// those of a seq range back at the end of the queue, so they are published
// again (with their original payload, seq and epoch: same event id, which
// consumers deduplicate). The copy is written in the transaction that
// deletes the message, so it costs no extra sync.
var prefixAudit = []byte("a/")

var (
	// ErrNoAuditWindow reports a Resend on a buffer that keeps no audit
	// window. It is errors.ErrUnsupported too, for callers that must not
	// import the buffer.
	ErrNoAuditWindow error = noAuditWindow{}
	// ErrBadRange reports a Resend range that is not one: from is 0, or
	// to is below from.
	ErrBadRange = errors.New("bad seq range")
)

func auditKey(pos uint64) []byte {
	return append(append([]byte(nil), prefixAudit...), queueKey(pos)[1:]...)
}

// keepForAudit copies the message at pos into the audit window, if one is
// kept. It runs in the committer's transaction, before the delete.
func (b *Buffer) keepForAudit(txn *badger.Txn, pos uint64) error {
	if b.opts.AuditWindow <= 0 {
		return nil
	}
	item, err := txn.Get(queueKey(pos))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	return txn.SetEntry(badger.NewEntry(auditKey(pos), v).WithTTL(b.opts.AuditWindow))
}

// Resend puts back in the queue every message still in the audit window
// that was born in epoch ("" for this buffer's) with a seq in [from, to]
// (to 0: no upper bound), in their original order, and returns how many.
// A seq is put back once, even when the window holds it twice (it was
// resent and delivered again). Entries whose seq is unknown (Entry.Seq 0)
// never match. It fails with ErrNoAuditWindow when no window is kept, and
// with an error wrapping ErrBadRange for a range that names no seq.
func (b *Buffer) Resend(ctx context.Context, epoch string, from, to uint64) (int, error) {
	if from == 0 {
		return 0, fmt.Errorf("%w: from must be at least 1", ErrBadRange)
	}
	if to != 0 && to < from {
		return 0, fmt.Errorf("%w: to %d is below from %d", ErrBadRange, to, from)
	}
	if epoch == "" {
		epoch = b.Epoch()
	}
	taken := map[uint64]bool{}
	return b.requeue(ctx, func(e Entry) bool {
		if e.Seq == 0 || e.Epoch != epoch || e.Seq < from || (to != 0 && e.Seq > to) || taken[e.Seq] {
			return false
		}
		taken[e.Seq] = true
		return true
	})
}

// requeue appends again every message still in the audit window for which
// match returns true, in their original order, and returns how many. The
// messages are unchanged: they keep their payload, seq and epoch.
func (b *Buffer) requeue(ctx context.Context, match func(Entry) bool) (int, error) {
	if b.opts.AuditWindow <= 0 {
		return 0, ErrNoAuditWindow
	}
	var found []Entry
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAudit})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			pos := posOf(append([]byte{prefixQueue[0]}, k[len(prefixAudit):]...))
			err := it.Item().Value(func(v []byte) error {
				e, err := decodeEntry(pos, v, b.meta.epoch)
				if err == nil && match(e) {
					found = append(found, e)
				}
				return nil // an undecodable copy is skipped
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read audit window: %w", err)
	}
	reqs := make([]*appendReq, 0, len(found))
	for _, e := range found {
		reqs = append(reqs, rawReq(e))
	}
	return b.enqueueRaw(ctx, reqs)
}

type noAuditWindow struct{}

func (noAuditWindow) Error() string { return "no audit window is kept (buffer.audit_window is 0)" }

func (noAuditWindow) Is(target error) bool { return target == errors.ErrUnsupported }
