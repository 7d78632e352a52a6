package buffer

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/dgraph-io/badger/v4"
)

// prefixState holds small named values that must survive a reboot (a
// station's mode and context, later the rule cache), apart from the queue.
var prefixState = []byte("s/")

// ErrNoState reports a state key never saved. It wraps fs.ErrNotExist, so
// that a consumer which must not import this package can test for it with
// errors.Is(err, fs.ErrNotExist).
var ErrNoState = fmt.Errorf("no such state: %w", fs.ErrNotExist)

// LoadState returns the value saved under key, or ErrNoState.
func (b *Buffer) LoadState(key string) ([]byte, error) {
	var v []byte
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append(append([]byte(nil), prefixState...), key...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNoState
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if err != nil && !errors.Is(err, ErrNoState) {
		return nil, fmt.Errorf("load state %s: %w", key, err)
	}
	return v, err
}

// SaveState stores value under key durably (the write is synced before it
// returns).
func (b *Buffer) SaveState(key string, value []byte) error {
	if b.opts.ReadOnly {
		return ErrReadOnly
	}
	err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append(append([]byte(nil), prefixState...), key...), value)
	})
	if err != nil {
		return fmt.Errorf("save state %s: %w", key, err)
	}
	return nil
}

// ListState returns every state value whose key starts with prefix, in
// key order: how an index kept as many small keys is loaded at start.
func (b *Buffer) ListState(prefix string) ([]StateValue, error) {
	var out []StateValue
	full := append(append([]byte(nil), prefixState...), prefix...)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: full, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(full); it.ValidForPrefix(full); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, StateValue{Key: string(item.Key()[len(prefixState):]), Value: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list state %s: %w", prefix, err)
	}
	return out, nil
}
