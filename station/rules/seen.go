package rules

import (
	"container/list"
	"sync"
	"time"
)

// MemorySeen is a Seen index in memory that keeps the most recently
// marked keys up to a capacity and forgets the least recently marked
// first. It is safe for concurrent use. It is lost on restart: gateways
// use the buffer's durable index, and tests and benches use this one.
type MemorySeen struct {
	mu    sync.Mutex
	cap   int
	order *list.List // front: most recently marked
	byKey map[string]*list.Element
}

type seenEntry struct {
	key, mode string
	at        time.Time
}

// NewMemorySeen makes an index holding at most capacity keys (at least 1).
func NewMemorySeen(capacity int) *MemorySeen {
	return &MemorySeen{cap: max(capacity, 1), order: list.New(), byKey: map[string]*list.Element{}}
}

// Seen implements Seen.
func (m *MemorySeen) Seen(key string) (mode string, at time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byKey[key]
	if !ok {
		return "", time.Time{}, false
	}
	e := el.Value.(*seenEntry)
	return e.mode, e.at, true
}

// Mark implements Seen.
func (m *MemorySeen) Mark(key, mode string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byKey[key]; ok {
		e := el.Value.(*seenEntry)
		e.mode, e.at = mode, at
		m.order.MoveToFront(el)
		return nil
	}
	m.byKey[key] = m.order.PushFront(&seenEntry{key: key, mode: mode, at: at})
	for m.order.Len() > m.cap {
		old := m.order.Back()
		m.order.Remove(old)
		delete(m.byKey, old.Value.(*seenEntry).key)
	}
	return nil
}

// Len is the number of keys held.
func (m *MemorySeen) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}
