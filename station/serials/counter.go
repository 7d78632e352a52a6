package serials

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrExhausted is wrapped by Issue's error when the counter has no number
// left: the width is used up (free) or no granted block is left.
var ErrExhausted = errors.New("serials: no number left")

// maxNumber is the largest number a counter issues, whatever maxSeq says:
// it keeps Next+1 from wrapping and every number inside an int64.
const maxNumber = math.MaxInt64

// Block is a range of counter values, From to To inclusive.
type Block struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Counter is the state of one scheme's counter on one gateway, a value
// the caller persists with the event that uses it. A free counter
// (Granted false) issues Next, Next+1, … up to the width's maximum;
// create it as Counter{Next: start}. A granted counter issues only
// numbers of its Blocks, lowest first, and none below Next; create it as
// Counter{Granted: true} and Grant it blocks. Blocks are held in
// ascending order and do not overlap; a used-up block is dropped.
type Counter struct {
	Next    uint64  `json:"next"`
	Granted bool    `json:"granted,omitempty"`
	Blocks  []Block `json:"blocks,omitempty"`
}

// Issue returns the number to issue and the counter to commit with it.
// It does not change c: the caller commits next in the same transaction
// as the assignment event and only then uses the number, so a crash
// cannot hand the same number out twice. maxSeq is the template's
// MaxSeq. The error wraps ErrExhausted.
func (c Counter) Issue(maxSeq uint64) (seq uint64, next Counter, err error) {
	maxSeq = min(maxSeq, maxNumber)
	if !c.Granted {
		if c.Next > maxSeq {
			return 0, c, fmt.Errorf("%w: the counter is at %d, past the largest number %d", ErrExhausted, c.Next, maxSeq)
		}
		return c.Next, Counter{Next: c.Next + 1}, nil
	}
	blocks := c.Blocks
	for len(blocks) > 0 && blocks[0].To < c.Next {
		blocks = blocks[1:]
	}
	if len(blocks) == 0 {
		return 0, c, fmt.Errorf("%w: no granted block left (next would be %d)", ErrExhausted, c.Next)
	}
	seq = max(c.Next, blocks[0].From)
	if seq > maxSeq {
		// A block granted before the template's width was narrowed.
		return 0, c, fmt.Errorf("%w: the next granted number %d is past the largest number %d", ErrExhausted, seq, maxSeq)
	}
	if seq == blocks[0].To {
		blocks = blocks[1:]
	}
	return seq, Counter{Next: seq + 1, Granted: true, Blocks: slices.Clone(blocks)}, nil
}

// Grant returns the counter with the block g added. It refuses a free
// counter, a block with From > To, one past maxSeq, one reaching below
// the numbers already issued and one overlapping a block held. A block
// equal to one held (a retried command) is no error and changes nothing,
// even when part of it is issued; once a block is used up it is dropped,
// and the same grant again is refused as below the numbers issued.
func (c Counter) Grant(g Grant, maxSeq uint64) (Counter, error) {
	maxSeq = min(maxSeq, maxNumber)
	b := Block{From: g.From, To: g.To}
	switch {
	case !c.Granted:
		return c, fmt.Errorf("grant_serials: scheme %s counts freely, the ids in its serials keep them apart; it takes no blocks", g.Scheme)
	case b.From > b.To:
		return c, errors.New("grant_serials: to: must be >= from")
	case b.To > maxSeq:
		return c, fmt.Errorf("grant_serials: to: %d is past the largest number the scheme's counter holds, %d", b.To, maxSeq)
	case slices.Contains(c.Blocks, b):
		return c, nil
	case b.From < c.Next:
		return c, fmt.Errorf("grant_serials: from: %d is below the numbers already issued (next is %d)", b.From, c.Next)
	}
	at := len(c.Blocks)
	for i, h := range c.Blocks {
		if h.From <= b.To && b.From <= h.To {
			return c, fmt.Errorf("grant_serials: block %d-%d overlaps the block %d-%d granted before", b.From, b.To, h.From, h.To)
		}
		if h.From > b.To && at == len(c.Blocks) {
			at = i
		}
	}
	next := c
	next.Blocks = slices.Insert(slices.Clone(c.Blocks), at, b)
	return next, nil
}

// Remaining returns how many numbers the counter can still issue: for
// the heartbeat, the metric and the low-water warning.
func (c Counter) Remaining(maxSeq uint64) uint64 {
	maxSeq = min(maxSeq, maxNumber)
	if !c.Granted {
		if c.Next > maxSeq {
			return 0
		}
		return maxSeq - c.Next + 1
	}
	var n uint64
	for _, b := range c.Blocks {
		lo, hi := max(b.From, c.Next), min(b.To, maxSeq)
		if lo <= hi {
			n += hi - lo + 1
		}
	}
	return n
}
