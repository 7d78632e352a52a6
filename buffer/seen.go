package buffer

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The seen-serial index remembers, per serial key, the station mode that
// last scanned it and when, so that duplicate rules ("received twice",
// "shipped but never received here") work offline. Entries expire after
// Options.SeenRetention (a Badger TTL), which bounds the index.
//
// Marks ride on the committer's next transaction, like deletes, instead of
// costing a sync of their own: a mark lost in a crash only means one
// duplicate goes unnoticed, while every scan already paid for its sync.
var prefixSeen = []byte("x/")

// maxMarks caps the marks in one transaction.
const maxMarks = 1024

type mark struct {
	key, value []byte
}

func seenKey(key string) []byte { return append(append([]byte(nil), prefixSeen...), key...) }

// Seen reports the mode and time key was last marked with.
func (b *Buffer) Seen(key string) (mode string, at time.Time, ok bool) {
	b.mu.Lock()
	v, pending := b.marks[key]
	b.mu.Unlock()
	if !pending {
		err := b.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(seenKey(key))
			if err != nil {
				return err
			}
			v, err = item.ValueCopy(nil)
			return err
		})
		if err != nil {
			return "", time.Time{}, false
		}
	}
	if len(v) < 8 {
		return "", time.Time{}, false
	}
	return string(v[8:]), time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// Mark records that key was scanned in mode at at. The write is committed
// with the next transaction.
func (b *Buffer) Mark(key, mode string, at time.Time) error {
	if b.opts.ReadOnly {
		return ErrReadOnly
	}
	if key == "" {
		return errors.New("empty seen key")
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	v = append(v, mode...)
	b.mu.Lock()
	b.marks[key] = v
	b.mu.Unlock()
	signal(b.wake)
	return nil
}

// takeMarks copies up to maxMarks pending marks for a commit; b.mu held.
// They stay pending (and visible to Seen) until the commit succeeded.
func (b *Buffer) takeMarks() []mark {
	if len(b.marks) == 0 {
		return nil
	}
	out := make([]mark, 0, min(len(b.marks), maxMarks))
	for k, v := range b.marks {
		if len(out) == maxMarks {
			signal(b.wake)
			break
		}
		out = append(out, mark{key: seenKey(k), value: v})
	}
	return out
}

// clearMarks drops committed marks from the pending set, unless a newer
// mark for the same key arrived meanwhile.
func (b *Buffer) clearMarks(ms []mark) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range ms {
		k := string(m.key[len(prefixSeen):])
		if v, ok := b.marks[k]; ok && string(v) == string(m.value) {
			delete(b.marks, k)
		}
	}
}

// SeenRetention is how long the seen-serial index remembers a unit (its
// configured or default retention).
func (b *Buffer) SeenRetention() time.Duration { return b.opts.SeenRetention }
