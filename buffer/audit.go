package buffer

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// The audit window keeps a copy of each delivered message, under its queue
// position, for Options.AuditWindow (a Badger TTL bounds it). Requeue puts
// chosen ones back at the end of the queue, so they are published again
// (with their original payload: same event id and seq, which consumers
// deduplicate). The copy is written in the transaction that deletes the
// message, so it costs no extra sync.
var prefixAudit = []byte("a/")

// ErrNoAuditWindow reports a Requeue on a buffer that keeps no audit window.
var ErrNoAuditWindow = errors.New("no audit window is kept (buffer.audit_window is 0)")

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

// Requeue appends again every message still in the audit window for which
// match returns true, in their original order, and returns how many. The
// payloads are unchanged: they keep their event id, seq and epoch.
func (b *Buffer) Requeue(ctx context.Context, match func(Entry) bool) (int, error) {
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
				e, err := decodeEntry(pos, v)
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
		reqs = append(reqs, &appendReq{topic: e.Topic, raw: e.Payload, at: e.Time, done: make(chan appendResult, 1)})
	}
	return b.enqueueRaw(ctx, reqs)
}
