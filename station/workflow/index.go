package workflow

import (
	"encoding/json"
	"net/url"
)

// Index is the gateway-wide durable key/value index the caller keeps
// (shared by its stations, written with the events of each Outcome).
type Index interface {
	Get(key string) (value string, ok bool)
}

// Write is a change to the Index: Value nil deletes Key.
type Write struct {
	Key   string
	Value *string
}

// IndexPrefix starts every key of the Index.
const IndexPrefix = "workflow/"

// OrderKey holds the JSON of an order's Progress at a station.
func OrderKey(station, order string) string {
	return IndexPrefix + "order/" + station + "/" + url.PathEscape(order)
}

// CountedKey holds the outcome a unit got against an order at a station
// (wire.OrderCounted, OrderOver, ...): it is not counted twice.
func CountedKey(station, order, unit string) string {
	return IndexPrefix + "counted/" + station + "/" + url.PathEscape(order) + "/" + unit
}

// ChildKey holds the JSON of a unit's Link to its parent.
func ChildKey(unit string) string { return IndexPrefix + "child/" + unit }

// Link is where a unit is aggregated: in Parent, being packed at
// Station while Open, or closed in it.
type Link struct {
	Parent  string `json:"parent"`
	Station string `json:"station"`
	Open    bool   `json:"open"`
}

// link reads unit's Link; a value that does not decode counts as none.
func (s *step) link(unit string) (Link, bool) {
	v, ok := s.get(ChildKey(unit))
	if !ok {
		return Link{}, false
	}
	var l Link
	if json.Unmarshal([]byte(v), &l) != nil || l.Parent == "" {
		return Link{}, false
	}
	return l, true
}

func (s *step) setLink(unit string, l *Link) {
	if l == nil {
		s.put(ChildKey(unit), nil)
		return
	}
	s.put(ChildKey(unit), encode(l))
}

func encode(v any) *string {
	b, _ := json.Marshal(v) // plain structs: cannot fail
	str := string(b)
	return &str
}
