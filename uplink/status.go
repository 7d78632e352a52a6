package uplink

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// StatusType is the CloudEvents type of the retained status message.
const StatusType = "io.scangw.status.v1"

// Status is the gateway's birth, will and shutdown announcement.
type Status struct {
	State      string    `json:"state"` // online, offline
	Version    string    `json:"version"`
	ConfigHash string    `json:"config_hash"`
	StartTime  time.Time `json:"start_time"`
	Epoch      string    `json:"epoch"`
}

// Encode renders st as single-line CloudEvents JSON from source
// (scangw://<site>/<gateway>), with a fresh id and the current time.
func (st Status) Encode(source string) []byte {
	ev := struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Type            string `json:"type"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            Status `json:"data"`
	}{"1.0", uuid.Must(uuid.NewV7()).String(), source, StatusType, time.Now().UTC().Format(time.RFC3339Nano), "application/json", st}
	ev.Data.StartTime = st.StartTime.UTC()
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // only strings and a time: cannot fail
	}
	return b
}
