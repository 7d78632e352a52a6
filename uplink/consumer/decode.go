package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/station/wire"
)

// maxPayload bounds a message the consumer decodes: far above what a
// gateway sends (mqtt.max_payload is 64 KiB by default, a scan's raw text
// 4 KiB), so only garbage is refused.
const maxPayload = 1 << 20

// maxField bounds the ids and epochs taken from a payload: they are kept
// in memory per gateway.
const maxField = 128

// kind is what a message on one of the consumer's topics is.
type kind int

const (
	kindEvent kind = iota + 1
	kindStatus
	kindReply
)

// message is a decoded message.
type message struct {
	kind          kind
	site, gateway string
	event         Event  // kindEvent
	epoch, state  string // kindStatus
	reply         reply  // kindReply
}

// reply is the part of a command's reply the consumer acts on.
type reply struct {
	id       string
	ok       bool
	code     string // of the error, when !ok
	message  string
	requeued int // a resend's result; -1 when absent
}

// envelope is the CloudEvents envelope, its data left for later.
type envelope struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Time        string          `json:"time"`
	Data        json.RawMessage `json:"data"`
}

// parse decodes a message received on topic under prefix. It accepts an
// event only if everything the consumer relies on holds: the topic is a
// gateway's scans/<station> or events/<station>, the type is one that
// topic carries, and data carries a seq (from 1), an epoch and the
// topic's station. Other fields of data are not checked: new ones may be
// added, and a consumer that refused an event for them would turn it into
// a gap no resend can fill. Nor is the source: the gateway is the one the
// topic names, because a gateway renamed with a backlog sends it under
// its new topics, with the sources the events were made with.
func parse(prefix, topic string, payload []byte) (message, error) {
	if len(payload) > maxPayload {
		return message{}, fmt.Errorf("%d bytes, more than %d", len(payload), maxPayload)
	}
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	site, rest, ok2 := strings.Cut(rest, "/")
	gateway, _, ok3 := strings.Cut(rest, "/")
	if !ok || !ok2 || !ok3 || !wire.ValidID(site) || !wire.ValidID(gateway) {
		return message{}, errors.New("not a gateway's topic under the prefix")
	}
	t := wire.TopicsFor(prefix, site, gateway)
	route, station, ok := t.Route(topic)
	if !ok {
		return message{}, errors.New("not a topic of the wire contract")
	}
	m := message{site: site, gateway: gateway}
	switch {
	case topic == t.Status:
		m.kind = kindStatus
	case topic == t.Reply:
		m.kind = kindReply
	case station != "" && (topic == t.Of(wire.ScanStream(station)) || topic == t.Of(wire.EventStream(station))):
		m.kind = kindEvent
	default:
		return message{}, errors.New("not a topic the consumer reads")
	}

	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return message{}, fmt.Errorf("not a JSON event: %w", err)
	}
	switch {
	case env.SpecVersion != "1.0":
		return message{}, fmt.Errorf("specversion %q, want 1.0", clip(env.SpecVersion))
	case env.ID == "" || len(env.ID) > maxField || !utf8.ValidString(env.ID):
		return message{}, fmt.Errorf("id %q: want 1 to %d bytes of UTF-8", clip(env.ID), maxField)
	case !slices.Contains(route.Types, env.Type):
		return message{}, fmt.Errorf("type %q does not travel on this topic", clip(env.Type))
	}
	at, err := time.Parse(time.RFC3339Nano, env.Time)
	if err != nil {
		return message{}, fmt.Errorf("time %q: want RFC 3339", clip(env.Time))
	}

	switch m.kind {
	case kindStatus:
		var d struct {
			State string `json:"state"`
			Epoch string `json:"epoch"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return message{}, fmt.Errorf("status data: %w", err)
		}
		if len(d.Epoch) > maxField || !utf8.ValidString(d.Epoch) {
			return message{}, fmt.Errorf("status epoch %q: want at most %d bytes of UTF-8", clip(d.Epoch), maxField)
		}
		m.epoch, m.state = d.Epoch, d.State
	case kindReply:
		var d struct {
			ID     string          `json:"id"`
			OK     bool            `json:"ok"`
			Error  *wire.Error     `json:"error"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return message{}, fmt.Errorf("reply data: %w", err)
		}
		m.reply = reply{id: d.ID, ok: d.OK, requeued: -1}
		if d.Error != nil {
			m.reply.code, m.reply.message = d.Error.Code, d.Error.Message
		}
		var res struct {
			Requeued *int `json:"requeued"`
		}
		// Only a resend's result has requeued; others are no concern here.
		if json.Unmarshal(d.Result, &res) == nil && res.Requeued != nil && *res.Requeued >= 0 {
			m.reply.requeued = *res.Requeued
		}
	case kindEvent:
		var d struct {
			Seq     *uint64 `json:"seq"`
			Epoch   string  `json:"epoch"`
			Station string  `json:"station"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return message{}, fmt.Errorf("data: %w", err)
		}
		switch {
		case d.Seq == nil || *d.Seq == 0:
			return message{}, errors.New("data.seq missing or 0")
		case d.Epoch == "" || len(d.Epoch) > maxField || !utf8.ValidString(d.Epoch):
			return message{}, fmt.Errorf("data.epoch %q: want 1 to %d bytes of UTF-8", clip(d.Epoch), maxField)
		case d.Station != station:
			return message{}, fmt.Errorf("data.station %q on station %s's topic", clip(d.Station), station)
		}
		m.event = Event{
			Site: site, Gateway: gateway, Station: station,
			ID: env.ID, Type: env.Type, Time: at,
			Seq: *d.Seq, Epoch: d.Epoch,
			Data: env.Data, Payload: payload,
		}
	}
	return m, nil
}

// clip shortens what a refusal quotes from a payload.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
