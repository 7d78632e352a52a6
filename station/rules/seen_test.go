package rules_test

import (
	"testing"
	"time"

	"github.com/scangw/scangw/station/rules"
)

func TestMemorySeen(t *testing.T) {
	m := rules.NewMemorySeen(2)
	t0 := time.Unix(1000, 0)
	m.Mark("a", "receive", t0)
	m.Mark("b", "receive", t0)
	m.Mark("a", "ship", t0.Add(time.Second)) // a is now the most recent
	m.Mark("c", "receive", t0)               // evicts b
	if _, _, ok := m.Seen("b"); ok {
		t.Error("b was not evicted")
	}
	if mode, at, ok := m.Seen("a"); !ok || mode != "ship" || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("a = %q %v %v", mode, at, ok)
	}
	if _, _, ok := m.Seen("c"); !ok || m.Len() != 2 {
		t.Errorf("c missing or len %d", m.Len())
	}
}
