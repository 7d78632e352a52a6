package uplink

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// identity watches the gateway's own status topic for another process
// announcing itself with the same gateway id. See the package comment,
// "Two gateways with one id".
type identity struct {
	instance string

	mu           sync.Mutex
	ownBirthSeen bool
	foreign      map[string]bool // event ids of other instances' statuses after our birth
	detected     bool
	lastLog      time.Time
}

// statusSeen is the part of a status message identity looks at.
type statusSeen struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		State     string `json:"state"`
		Instance  string `json:"instance"`
		Version   string `json:"version"`
		StartTime string `json:"start_time"`
	} `json:"data"`
}

// observe takes one message from the status topic. It returns the message
// when it is evidence of a duplicate, and whether this evidence is worth
// a log line (the first, then one every few minutes).
func (id *identity) observe(payload []byte) (ev *statusSeen, log bool) {
	var st statusSeen
	if json.Unmarshal(payload, &st) != nil || st.Type != wire.StatusType {
		return nil, false
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if st.Data.Instance == id.instance {
		if st.Data.State == "online" {
			id.ownBirthSeen = true
		}
		return nil, false
	}
	// Before our own birth came back, whatever is retained is older than
	// us: the status of a predecessor on this box (a crash, a restart).
	if !id.ownBirthSeen {
		return nil, false
	}
	// After it, only another live process can say online. A predecessor
	// still connected under another client id may fire its will once
	// later, so an offline counts only from the second distinct one.
	if st.Data.State != "online" {
		if id.foreign == nil {
			id.foreign = map[string]bool{}
		}
		id.foreign[st.ID] = true
		if len(id.foreign) < 2 {
			return nil, false
		}
	}
	id.detected = true
	if now := time.Now(); id.lastLog.IsZero() || now.Sub(id.lastLog) >= 5*time.Minute {
		id.lastLog = now
		return &st, true
	}
	return &st, false
}

func (id *identity) duplicate() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.detected
}
