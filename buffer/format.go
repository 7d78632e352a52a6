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
//	3: entries may be in encoding v2 (below), which carries seq and epoch.
//
// The move to 3 rewrites nothing: entries in v1 still decode (with their
// seq unknown), and the keys are those of format 2. It is a new format
// all the same because an older scangw cannot decode a v2 entry: it would
// open the directory and then fail on every read of the queue (and skip
// such entries when salvaging), where the format check makes it refuse
// the directory at once, untouched, with ErrNewerFormat.
const FormatVersion = 3

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
	} else if m.nextSeq, err = getUintOr(txn, keySeq, 1); err != nil {
		return m, err
	}
	if readOnly || format == FormatVersion {
		return m, nil
	}
	return m, migrate(txn, &m)
}

// migrate brings m, read from an older format, to FormatVersion.
func migrate(txn *badger.Txn, m *meta) error {
	if m.format == 1 {
		if err := putUint(txn, keySeq, m.nextSeq); err != nil {
			return err
		}
	}
	// 2 to 3 changes no key: only what new entries may look like.
	if err := putUint(txn, keyFormat, FormatVersion); err != nil {
		return err
	}
	m.migrated, m.format = m.format, FormatVersion
	return nil
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

// Entry encodings. A queue value is one of:
//
//	v1 (written before format 3; still decoded):
//	  [1] 1  [8] append time, unix ns  [uvarint] topic length  topic  payload
//	v2 (written by this build):
//	  [1] 2  [8] append time, unix ns  [uvarint] seq (0: not known)
//	  [uvarint] epoch length  epoch  [uvarint] stream length  stream  payload
//
// The append time is big-endian; seq and lengths are uvarints. In v2 an
// empty epoch means the epoch of the
// buffer that holds the entry: every message appended here, and resent
// ones born here, store it so, and a scan pays a few bytes for its seq
// and epoch (the seq's varint and one length byte) instead of the 36 of a
// spelled-out epoch. Only messages
// salvaged from another buffer spell out theirs. A v1 entry's seq and
// epoch are unknown (they are only inside its payload): it decodes with
// Seq 0 and no epoch, and its empty epoch must not be read as the holding
// buffer's. The audit window keeps a delivered entry's value as it was,
// so it decodes the same there.
const (
	entryV1 = 1
	entryV2 = 2
)

// encodeEntry encodes an entry in v2; epoch is "" for the holding
// buffer's.
func encodeEntry(at time.Time, seq uint64, epoch, stream string, payload []byte) []byte {
	buf := make([]byte, 0, 1+8+3*binary.MaxVarintLen64+len(epoch)+len(stream)+len(payload))
	buf = append(buf, entryV2)
	buf = binary.BigEndian.AppendUint64(buf, uint64(at.UnixNano()))
	buf = binary.AppendUvarint(buf, seq)
	buf = appendString(buf, epoch)
	buf = appendString(buf, stream)
	return append(buf, payload...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodeEntry decodes the value stored at pos in a buffer whose epoch is
// holder. With holder "" (a salvaged directory whose epoch could not be
// read), an entry that stored its epoch empty cannot be placed: its seq is
// reported unknown.
func decodeEntry(pos uint64, v []byte, holder string) (Entry, error) {
	e, err := decodeStored(pos, v)
	if err != nil {
		return Entry{}, err
	}
	return e.inBuffer(holder), nil
}

// inBuffer fills in the epoch that e, decoded by decodeStored, left empty
// for the buffer that holds it, whose epoch is holder.
func (e Entry) inBuffer(holder string) Entry {
	if e.Seq != 0 && e.Epoch == "" {
		if holder == "" {
			e.Seq = 0
		}
		e.Epoch = holder
	}
	return e
}

// decodeStored decodes a stored entry as it is: a v2 entry's empty epoch
// (the holding buffer's) stays empty, with its seq set.
func decodeStored(pos uint64, v []byte) (Entry, error) {
	if len(v) < 9 || (v[0] != entryV1 && v[0] != entryV2) {
		return Entry{}, errors.New("unknown entry encoding")
	}
	e := Entry{Pos: pos, Time: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))}
	rest := v[9:]
	if v[0] == entryV2 {
		seq, w := binary.Uvarint(rest)
		if w <= 0 {
			return Entry{}, errors.New("truncated entry")
		}
		epoch, r, ok := cutString(rest[w:])
		if !ok {
			return Entry{}, errors.New("truncated entry")
		}
		if seq != 0 {
			e.Seq, e.Epoch = seq, epoch
		}
		rest = r
	}
	stream, rest, ok := cutString(rest)
	if !ok {
		return Entry{}, errors.New("truncated entry")
	}
	e.Stream, e.Payload = stream, append([]byte(nil), rest...)
	return e, nil
}

// cutString reads a uvarint length and that many bytes off b.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
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
