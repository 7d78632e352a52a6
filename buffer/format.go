package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// FormatVersion is the on-disk layout this build writes. Opening an older
// layout migrates it in one transaction; a newer one is refused.
//
//	1: queue keyed by seq; m/next is the next seq.
//	2: queue keyed by position; m/next is the next position and m/seq the
//	   next event seq, so salvaged messages can be queued without using a
//	   seq of the live epoch.
const FormatVersion = 2

// Key space. Single-byte queue prefix keeps queue keys at 9 bytes.
var (
	prefixQueue = []byte{'q'}
	keyNext     = []byte("m/next")
	keySeq      = []byte("m/seq")
	keyFormat   = []byte("m/format")
	keyEpoch    = []byte("m/epoch")
)

// ErrNewerFormat reports a buffer written by a newer scangw.
var ErrNewerFormat = errors.New("buffer format is newer than this build")

// meta is the buffer's persistent counters.
type meta struct {
	format   uint64
	epoch    string
	nextPos  uint64
	nextSeq  uint64
	migrated uint64 // format migrated from, 0 if none
	created  bool
}

// ErrNoBuffer reports a read-only open of a directory that holds no buffer.
var ErrNoBuffer = errors.New("no scangw buffer in this directory")

// loadMeta reads (creating or migrating, unless readOnly) the metadata.
func loadMeta(txn *badger.Txn, readOnly bool) (meta, error) {
	var m meta
	format, err := getUint(txn, keyFormat)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound) && readOnly:
		return m, ErrNoBuffer
	case errors.Is(err, badger.ErrKeyNotFound):
		m = meta{format: FormatVersion, epoch: uuid.Must(uuid.NewV7()).String(), nextPos: 1, nextSeq: 1, created: true}
		if err := putUint(txn, keyFormat, FormatVersion); err != nil {
			return m, err
		}
		if err := txn.Set(keyEpoch, []byte(m.epoch)); err != nil {
			return m, err
		}
		return m, nil
	case err != nil:
		return m, fmt.Errorf("read format: %w", err)
	case format > FormatVersion:
		return m, fmt.Errorf("%w: it is format %d, this build reads up to %d: run a newer scangw, or move the directory aside", ErrNewerFormat, format, FormatVersion)
	}
	m.format = format
	item, err := txn.Get(keyEpoch)
	if err != nil {
		return m, fmt.Errorf("read epoch: %w", err)
	}
	ep, err := item.ValueCopy(nil)
	if err != nil {
		return m, err
	}
	m.epoch = string(ep)
	if m.nextPos, err = getUintOr(txn, keyNext, 1); err != nil {
		return m, err
	}
	if format == 1 {
		// Version 1 keyed the queue by seq: position and seq were one.
		m.nextSeq = m.nextPos
		if readOnly {
			return m, nil
		}
		if err := putUint(txn, keySeq, m.nextSeq); err != nil {
			return m, err
		}
		if err := putUint(txn, keyFormat, 2); err != nil {
			return m, err
		}
		m.migrated, m.format = 1, 2
		return m, nil
	}
	if m.nextSeq, err = getUintOr(txn, keySeq, 1); err != nil {
		return m, err
	}
	return m, nil
}

func queueKey(pos uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixQueue[0]
	binary.BigEndian.PutUint64(k[1:], pos)
	return k
}

func posOf(key []byte) uint64 {
	if len(key) != 9 {
		return 0
	}
	return binary.BigEndian.Uint64(key[1:])
}

// Entry encoding, version 1 (the same in formats 1 and 2):
//
//	[1] version  [8] append time, unix ns  [uvarint] topic length  topic  payload
const entryV1 = 1

func encodeEntry(at time.Time, topic string, payload []byte) []byte {
	buf := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(topic)+len(payload))
	buf = append(buf, entryV1)
	buf = binary.BigEndian.AppendUint64(buf, uint64(at.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(topic)))
	buf = append(buf, topic...)
	return append(buf, payload...)
}

func decodeEntry(pos uint64, v []byte) (Entry, error) {
	if len(v) < 9 || v[0] != entryV1 {
		return Entry{}, errors.New("unknown entry encoding")
	}
	at := int64(binary.BigEndian.Uint64(v[1:9]))
	n, w := binary.Uvarint(v[9:])
	if w <= 0 || uint64(len(v)-9-w) < n {
		return Entry{}, errors.New("truncated entry")
	}
	rest := v[9+w:]
	return Entry{
		Pos:     pos,
		Time:    time.Unix(0, at),
		Topic:   string(rest[:n]),
		Payload: append([]byte(nil), rest[n:]...),
	}, nil
}

func getUint(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%s: bad length %d", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func getUintOr(txn *badger.Txn, key []byte, def uint64) (uint64, error) {
	v, err := getUint(txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}

func putUint(txn *badger.Txn, key []byte, v uint64) error {
	return txn.Set(key, binary.BigEndian.AppendUint64(nil, v))
}
