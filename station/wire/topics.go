package wire

import "strings"

// Stream prefixes: a station's events are on <kind>/<station> under the
// gateway's topic base.
const (
	scansKind     = "scans"
	eventsKind    = "events"
	indicatorKind = "indicator"
	epcisKind     = "epcis"
)

// ScanStream is the stream of a station's scans.
func ScanStream(station string) string { return scansKind + "/" + station }

// EventStream is the stream of a station's other buffered events (mode
// and context changes).
func EventStream(station string) string { return eventsKind + "/" + station }

// EPCISStream is the stream of a station's facts rendered as GS1 EPCIS
// 2.0 documents (when enabled).
func EPCISStream(station string) string { return epcisKind + "/" + station }

// IndicatorStream is the stream of a station's live read outcomes.
func IndicatorStream(station string) string { return indicatorKind + "/" + station }

// Topics are one gateway's topics.
type Topics struct {
	// Base is <prefix>/<site>/<gateway>; every topic but SiteRules is
	// under it.
	Base                          string
	Status, Heartbeat, Reply, Cmd string
	// SiteRules and GatewayRules carry retained rule sets.
	SiteRules, GatewayRules string
}

// TopicsFor returns the topics of gateway at site under prefix. Config
// validation keeps the ids to [A-Za-z0-9._-], so nothing needs escaping;
// the prefix is used verbatim.
func TopicsFor(prefix, site, gateway string) Topics {
	base := prefix + "/" + site + "/" + gateway
	return Topics{
		Base:         base,
		Status:       base + "/status",
		Heartbeat:    base + "/heartbeat",
		Reply:        base + "/reply",
		Cmd:          base + "/cmd",
		SiteRules:    prefix + "/" + site + "/rules",
		GatewayRules: base + "/rules",
	}
}

// Of returns the topic a stream is published on. A stream has exactly one
// "/" (ids cannot hold one); anything else is a whole topic, as scangw
// stored it before it stored streams, and is returned as it is, so that
// such a backlog still goes out.
func (t Topics) Of(stream string) string {
	if !IsStream(stream) {
		return stream
	}
	return t.Base + "/" + stream
}

// IsStream reports whether s is a stream (relative to a gateway's topics)
// rather than a whole topic stored by an older scangw.
func IsStream(s string) bool { return strings.Count(s, "/") == 1 }

// Route is one row of the topic table: a topic pattern and what it
// carries.
type Route struct {
	// Pattern is the topic with <prefix>, <site>, <gateway>, <station>.
	Pattern  string
	Up       bool // published by the gateway; else received by it
	Retained bool
	QoS      byte
	// Types are the event types published on it; none for the downlink,
	// whose messages are commands and rule sets, not events.
	Types []string
	What  string
}

// Routes is the topic table of the wire contract. README's table is
// checked against it.
var Routes = []Route{
	{"<prefix>/<site>/<gateway>/scans/<station>", true, false, 1, []string{ScanType}, "scan events (buffered, carry `seq`)"},
	{"<prefix>/<site>/<gateway>/events/<station>", true, false, 1, []string{ContextType, NoReadType, OrderType, AggregationType, AssignedType}, "other station events: mode and context changes (by command or document barcode), no-reads, order progress, closed aggregations, assigned serials (buffered, carry `seq`)"},
	{"<prefix>/<site>/<gateway>/epcis/<station>", true, false, 1, nil, "the same facts as GS1 EPCIS 2.0 JSON-LD documents (`EPCISDocument`, one event each), when `epcis.enabled` (buffered, in order with the scans; no `seq` of their own, `scangw:seq` names the fact's)"},
	{"<prefix>/<site>/<gateway>/indicator/<station>", true, false, 0, []string{IndicatorType}, "each read's outcome after its commit (not buffered), for a display or stack light"},
	{"<prefix>/<site>/<gateway>/status", true, true, 1, []string{StatusType}, "birth `online` (version, config hash, start time, buffer epoch, instance); will and clean shutdown `offline`"},
	{"<prefix>/<site>/<gateway>/heartbeat", true, false, 0, []string{HeartbeatType}, "periodic health: backlog depth and age, stations and scanners, clock sync, config hash (the first of a connection at QoS 1 probes that publishing is permitted)"},
	{"<prefix>/<site>/<gateway>/reply", true, false, 1, []string{ReplyType}, "answers to commands and refused rule sets, with the command's correlation id"},
	{"<prefix>/<site>/<gateway>/cmd", false, false, 1, nil, "commands for the gateway and its stations"},
	{"<prefix>/<site>/rules", false, true, 1, nil, "signed rule set for every gateway of the site"},
	{"<prefix>/<site>/<gateway>/rules", false, true, 1, nil, "signed rule set for this gateway"},
}

// Route finds the row of the topic table that topic belongs to, and the
// station it names ("" for the gateway's own topics).
func (t Topics) Route(topic string) (r Route, station string, ok bool) {
	pattern := ""
	rest, under := strings.CutPrefix(topic, t.Base+"/")
	kind, station, perStation := strings.Cut(rest, "/")
	switch {
	case topic == t.SiteRules:
		pattern, station = "<prefix>/<site>/rules", ""
	case !under, perStation && !ValidID(station):
		return Route{}, "", false
	case perStation:
		pattern = "<prefix>/<site>/<gateway>/" + kind + "/<station>"
	default:
		pattern = "<prefix>/<site>/<gateway>/" + kind
	}
	for _, r := range Routes {
		if r.Pattern == pattern {
			return r, station, true
		}
	}
	return Route{}, "", false
}

// ValidID reports whether s is a valid site, gateway, station or scanner
// id: 1 to 64 of [A-Za-z0-9._-], so that no id needs escaping in a topic.
func ValidID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
