package configs

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Problem is one bad field: where it is and what is wrong with it.
type Problem struct {
	// Path names the field the way it is written in YAML, with list
	// indexes: "stations[1].scanners[0].baud". It is empty when the problem
	// is the document as a whole.
	Path string
	// Message says what is wrong and, where it helps, what would be right.
	Message string
	// Line is where in its file the field (or, for a missing one, the
	// mapping that lacks it) is written; 0 when unknown. File names the
	// file when the config is made of several (conf.d).
	Line int
	File string
}

// String returns the problem as "<path>: <message> (<file> line <n>)".
func (p Problem) String() string {
	s := p.Message
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	switch {
	case p.Line > 0 && p.File != "":
		s += fmt.Sprintf(" (%s line %d)", p.File, p.Line)
	case p.Line > 0:
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	return s
}

// ValidationError lists every bad field of a config. Validate and Parse
// return it so that an operator fixes all mistakes in one round trip
// instead of one per restart.
type ValidationError struct {
	Problems []Problem
}

// Error returns the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Limits and allowed values. Ids end up in MQTT topics and CloudEvents
// sources verbatim (see DESIGN.md, "Wire contract"), which is why their
// alphabet is so narrow: nothing ever needs escaping.
const (
	maxIDLen        = 64
	maxClientIDLen  = 128
	maxInflight     = 1000
	maxLengthLimit  = 65536
	minFrame        = 16
	maxFrameLimit   = 65536
	maxTerminator   = 4
	maxFeedbackLen  = 64
	maxKeepAlive    = 65535 * time.Second // MQTT carries keepalive as a 16-bit number of seconds
	maxMQTTString   = 65535               // MQTT strings carry a 16-bit length
	maxBrokers      = 16
	minMaxPayload   = 1 << 10
	maxMaxPayload   = 128 << 20 // MQTT's own packet limit is 256 MiB
	maxHeartbeat    = 24 * time.Hour
	minMaxCommand   = 1 << 10
	maxMaxCommand   = 1 << 20
	idRule          = "must match [A-Za-z0-9._-], 1 to 64 characters"
	clientIDRule    = "must match [A-Za-z0-9._-], 1 to 128 characters"
	scannerTypeRule = "must be one of serial, hid, tcp"
)

var (
	brokerSchemes = []string{"tcp", "mqtt", "ssl", "mqtts"}
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	stationModes  = []string{"receive", "ship", "return", "transfer", "count", "pack", "build", "unpack", "assign"}
	baudRates     = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
)

// Validate checks c and reports every bad field at once, each named by its
// path, as a *ValidationError. It does no I/O: whether a port exists or a
// broker answers is for the parts that open them. Validate expects defaults
// to have been applied, as Load and Parse do; a hand-built Config must set
// every field.
func (c *Config) Validate() error {
	v := &validator{}
	c.validate(v)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

type validator struct {
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) id(path, id string) {
	switch {
	case id == "":
		v.add(path, "required")
	case !validID(id, maxIDLen):
		v.add(path, idRule)
	}
}

// validate checks the sections in the order of the file, so that problems
// are reported in that order.
func (c *Config) validate(v *validator) {
	c.Gateway.validate(v)
	c.Buffer.validate(v)
	c.MQTT.validate(v, c.Gateway.ID)
	c.HTTP.validate(v)
	c.Rules.validate(v)
	c.Log.validate(v)
	validateStations(v, c.Stations)
	c.validateWorkflow(v)
}

func (g *Gateway) validate(v *validator) {
	v.id("gateway.id", g.ID)
	v.id("gateway.site", g.Site)
}

func (b *Buffer) validate(v *validator) {
	switch {
	case b.Dir == "":
		v.add("buffer.dir", "required")
	case strings.ContainsRune(b.Dir, 0):
		v.add("buffer.dir", "must not contain a NUL byte")
	}
	if b.MaxScans < 1 {
		v.add("buffer.max_scans", "must be at least 1")
	}
	if b.MaxBytes < 16<<20 {
		v.add("buffer.max_bytes", "must be at least 16MiB")
	}
	if b.MinFree < 0 {
		v.add("buffer.min_free", "must not be negative")
	}
	if b.AuditWindow < 0 {
		v.add("buffer.audit_window", "must not be negative (0 turns it off)")
	}
	if b.SeenRetention < Duration(time.Hour) {
		v.add("buffer.seen_retention", "must be at least 1h")
	}
	if b.HighWater <= 0 || b.HighWater >= 1 {
		v.add("buffer.high_water", "must be between 0 and 1 (a fraction of the limits)")
	}
}

func (r *Rules) validate(v *validator) {
	for i, k := range r.Keys {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			v.add(fmt.Sprintf("rules.keys[%d]", i), "must be a base64 Ed25519 public key (32 bytes)")
		}
	}
	if r.AllowUnsigned && len(r.Keys) > 0 {
		v.add("rules.allow_unsigned", "cannot be true while rules.keys are set: a signed-only gateway must not take unsigned sets")
	}
}

func (l *Log) validate(v *validator) {
	if !slices.Contains(logLevels, l.Level) {
		v.add("log.level", "must be one of %s", list(logLevels))
	}
	if !slices.Contains(logFormats, l.Format) {
		v.add("log.format", "must be one of %s", list(logFormats))
	}
}

// validateStations checks every station and its scanners, and that no
// station id, scanner id or port is used twice.
func validateStations(v *validator, stations []Station) {
	if len(stations) == 0 {
		v.add("stations", "at least one station is required")
	}
	stationIDs := map[string]string{} // id -> path of its first use
	scannerIDs := map[string]string{}
	ports := map[string]string{} // cleaned port -> path of the scanner using it
	for i := range stations {
		st := &stations[i]
		p := fmt.Sprintf("stations[%d]", i)
		v.id(p+".id", st.ID)
		if first, dup := stationIDs[st.ID]; dup && st.ID != "" {
			v.add(p+".id", "duplicate of %s.id", first)
		} else if st.ID != "" {
			stationIDs[st.ID] = p
		}
		st.validate(v, p)
		for j := range st.Scanners {
			sc := &st.Scanners[j]
			sp := fmt.Sprintf("%s.scanners[%d]", p, j)
			sc.checkUnique(v, sp, scannerIDs, ports)
			sc.validate(v, sp)
		}
	}
}

// checkUnique reports a scanner whose id or port an earlier scanner, at
// the path recorded in ids or ports, already uses.
func (sc *Scanner) checkUnique(v *validator, sp string, ids, ports map[string]string) {
	// Scanner ids are unique per gateway, not per station: metrics
	// and logs label by scanner alone.
	if first, dup := ids[sc.ID]; dup && sc.ID != "" {
		v.add(sp+".id", "duplicate of %s.id", first)
	} else if sc.ID != "" {
		ids[sc.ID] = sp
	}
	// Two tcp scanners cannot listen on one port: ":2112" and
	// "0.0.0.0:2112" are the same port, whatever the host.
	if sc.Type == "tcp" && sc.Listen != "" {
		if _, port, err := net.SplitHostPort(sc.Listen); err == nil {
			key := "tcp port " + port
			if first, dup := ports[key]; dup {
				v.add(sp+".listen", "port %s is already used by %s", port, first)
			} else {
				ports[key] = sp
			}
		}
	}
	// Two drivers reading one tty would each get half the bytes.
	if sc.Port != "" {
		key := path.Clean(sc.Port)
		if first, dup := ports[key]; dup {
			v.add(sp+".port", "%s is already used by %s", sc.Port, first)
		} else {
			ports[key] = sp
		}
	}
}

func (m *MQTT) validate(v *validator, gatewayID string) {
	switch {
	case len(m.Brokers) > 0 && m.Broker != "":
		v.add("mqtt.brokers", "give mqtt.broker (one address) or mqtt.brokers (several), not both")
	case len(m.Brokers) > maxBrokers:
		v.add("mqtt.brokers", "at most %d addresses", maxBrokers)
	case len(m.Brokers) > 0:
		seen := map[string]int{}
		tls := 0
		for i, b := range m.Brokers {
			p := fmt.Sprintf("mqtt.brokers[%d]", i)
			if msg := checkBroker(b); msg != "" {
				v.add(p, "%s", msg)
				continue
			}
			if j, dup := seen[b]; dup {
				v.add(p, "the same as mqtt.brokers[%d]", j)
			}
			seen[b] = i
			if isTLSURL(b) {
				tls++
			}
		}
		if tls != 0 && tls != len(m.Brokers) {
			v.add("mqtt.brokers", "all use TLS (ssl://, mqtts://) or none does: one TLS setting serves them all")
		}
	default:
		if msg := checkBroker(m.Broker); msg != "" {
			v.add("mqtt.broker", "%s", msg)
		}
	}

	tp := m.TopicPrefix
	switch {
	case tp == "":
		v.add("mqtt.topic_prefix", "required")
	case strings.ContainsAny(tp, "+#"):
		v.add("mqtt.topic_prefix", "must not contain the MQTT wildcards + or #")
	case strings.ContainsRune(tp, 0):
		v.add("mqtt.topic_prefix", "must not contain a NUL byte")
	case !utf8.ValidString(tp):
		v.add("mqtt.topic_prefix", "must be valid UTF-8")
	case strings.HasPrefix(tp, "/") || strings.HasSuffix(tp, "/"):
		v.add("mqtt.topic_prefix", "must not start or end with /")
	case strings.HasPrefix(tp, "$"):
		// Brokers reserve $-topics ($SYS) and refuse client publishes there.
		v.add("mqtt.topic_prefix", "must not start with $")
	}

	// A client id derived from a bad or missing gateway.id is that field's
	// problem; reporting it twice would send the operator to the wrong key.
	derived := m.ClientID == "" || m.ClientID == "scangw-"+gatewayID
	if !derived || validID(gatewayID, maxIDLen) {
		if !validID(m.ClientID, maxClientIDLen) {
			v.add("mqtt.client_id", clientIDRule)
		}
	}

	if m.Inflight < 1 || m.Inflight > maxInflight {
		v.add("mqtt.inflight", "must be 1 to %d", maxInflight)
	}
	switch {
	case m.KeepAlive.D() < time.Second:
		v.add("mqtt.keepalive", "must be at least 1s")
	case m.KeepAlive.D() > maxKeepAlive:
		v.add("mqtt.keepalive", "must be at most %s (MQTT's limit of 65535 seconds)", maxKeepAlive)
	}
	if m.ConnectTimeout <= 0 {
		v.add("mqtt.connect_timeout", "must be positive")
	}
	if m.WriteTimeout <= 0 {
		v.add("mqtt.write_timeout", "must be positive")
	}
	if m.ReconnectMin <= 0 {
		v.add("mqtt.reconnect_min", "must be positive")
	}
	if m.ReconnectMax < m.ReconnectMin {
		v.add("mqtt.reconnect_max", "must be at least reconnect_min (%s)", m.ReconnectMin)
	} else if m.ReconnectMax <= 0 {
		v.add("mqtt.reconnect_max", "must be positive")
	}

	m.validateAuth(v)
	m.TLS.validate(v, m.BrokerURLs()[0])

	if m.MaxPayload < minMaxPayload || m.MaxPayload > maxMaxPayload {
		v.add("mqtt.max_payload", "must be %s to %s", Size(minMaxPayload), Size(maxMaxPayload))
	}
	if m.Heartbeat.D() < time.Second || m.Heartbeat.D() > maxHeartbeat {
		v.add("mqtt.heartbeat", "must be 1s to %s", maxHeartbeat)
	}
	if m.MaxCommand < minMaxCommand || m.MaxCommand > maxMaxCommand {
		v.add("mqtt.max_command", "must be %s to %s", Size(minMaxCommand), Size(maxMaxCommand))
	}
	for i, k := range m.CommandKeys {
		if _, err := parsePublicKey(k); err != nil {
			v.add(fmt.Sprintf("mqtt.command_keys[%d]", i), "%v", err)
		}
	}
}

func (m *MQTT) validateAuth(v *validator) {
	var sources []string
	for _, s := range []struct{ key, val string }{
		{"password", m.Password}, {"password_file", m.PasswordFile}, {"password_env", m.PasswordEnv},
	} {
		if s.val == "" {
			continue
		}
		sources = append(sources, s.key)
		if len(sources) > 1 {
			v.add("mqtt."+s.key, "only one of password, password_file and password_env may be given (%s is)", sources[0])
		}
	}
	switch {
	case len(sources) > 0 && m.Username == "":
		v.add("mqtt.username", "required with %s (MQTT sends no password without a user name)", sources[0])
	case len(m.Username) > maxMQTTString || strings.ContainsRune(m.Username, 0) || !utf8.ValidString(m.Username):
		v.add("mqtt.username", "must be UTF-8 without NUL, at most %d bytes", maxMQTTString)
	}
	if len(m.Password) > maxMQTTString {
		v.add("mqtt.password", "must be at most %d bytes", maxMQTTString)
	}
	if strings.ContainsRune(m.PasswordFile, 0) {
		v.add("mqtt.password_file", "must not contain a NUL byte")
	}
	if m.PasswordEnv != "" && !validEnvName(m.PasswordEnv) {
		v.add("mqtt.password_env", "must be an environment variable name: [A-Za-z_][A-Za-z0-9_]*")
	}
}

func (t *TLS) validate(v *validator, broker string) {
	given := *t != TLS{}
	if u, err := url.Parse(broker); given && checkBroker(broker) == "" && err == nil && u.Scheme != "ssl" && u.Scheme != "mqtts" {
		// Credentials and scans would travel in clear while the operator
		// believes they are protected.
		v.add("mqtt.tls", "given, but the broker is %s://, which does not use TLS: use ssl:// or mqtts://", u.Scheme)
	}
	for _, f := range []struct{ key, val string }{
		{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile},
	} {
		if strings.ContainsRune(f.val, 0) {
			v.add("mqtt.tls."+f.key, "must not contain a NUL byte")
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.add("mqtt.tls.key_file", "required with cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		v.add("mqtt.tls.cert_file", "required with key_file")
	}
	if t.ServerName != "" && (len(t.ServerName) > 253 || strings.ContainsAny(t.ServerName, " \t/\x00")) {
		v.add("mqtt.tls.server_name", "must be a host name or IP address")
	}
}

// parsePublicKey decodes a base64 Ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("must be an Ed25519 public key in base64 (32 bytes)")
	}
	return ed25519.PublicKey(b), nil
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || b == '_' || i > 0 && '0' <= b && b <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}

func isTLSURL(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && (u.Scheme == "ssl" || u.Scheme == "mqtts")
}

// checkBroker returns what is wrong with a broker URL, or "".
func checkBroker(broker string) string {
	const example = "tcp://host:1883"
	if broker == "" {
		return "required"
	}
	u, err := url.Parse(broker)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "must be a URL like " + example
	}
	if !slices.Contains(brokerSchemes, u.Scheme) {
		return "scheme must be one of " + list(brokerSchemes)
	}
	if u.Hostname() == "" {
		return "must name a host, like " + example
	}
	if u.Port() == "" {
		return "must name a port, like " + example
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return "port must be 1 to 65535"
	}
	return ""
}

func (h *HTTP) validate(v *validator) {
	if h.Listen == "" {
		return // disabled
	}
	_, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		v.add("http.listen", "must be host:port like 127.0.0.1:9754, or empty to disable")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("http.listen", "port must be a number 0 to 65535")
		return
	}
	switch {
	case h.Token != "" && h.TokenFile != "":
		v.add("http.token_file", "give token or token_file, not both")
	case h.Token != "" && len(h.Token) < minTokenLen:
		v.add("http.token", "must be at least %d characters", minTokenLen)
	case h.Token == "" && h.TokenFile == "" && h.Guarded():
		v.add("http.token", "required (or token_file) when http.listen %s is not a loopback address: the status page shows the station's scans", h.Listen)
	}
	for i, p := range h.Open {
		if !slices.Contains(openablePaths, p) {
			v.add(fmt.Sprintf("http.open[%d]", i), "must be one of %s", list(openablePaths))
		}
	}
}

// minTokenLen keeps a status page token out of guessing range.
const minTokenLen = 16

// openablePaths are the endpoints that may stay open beside a token: they
// show no scan data.
var openablePaths = []string{"/metrics", "/healthz", "/readyz"}

// loopbackListen reports whether a host:port listens on loopback only.
// An empty host or a wildcard listens everywhere.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (st *Station) validate(v *validator, p string) {
	if !slices.Contains(stationModes, st.Mode) {
		v.add(p+".mode", "must be one of %s", list(stationModes))
	}
	if st.MinLength < 1 {
		v.add(p+".min_length", "must be at least 1")
	}
	switch {
	case st.MaxLength > maxLengthLimit:
		v.add(p+".max_length", "must be at most %d", maxLengthLimit)
	case st.MaxLength < st.MinLength:
		v.add(p+".max_length", "must be at least min_length (%d)", st.MinLength)
	}
	if len(st.Scanners) == 0 {
		v.add(p+".scanners", "at least one scanner is required")
	}
	if st.Debounce < 0 || st.Debounce.D() > maxDebounce {
		v.add(p+".debounce", "must be 0 to %v", maxDebounce)
	}
}

func (sc *Scanner) validate(v *validator, p string) {
	v.id(p+".id", sc.ID)
	switch sc.Type {
	case "hid":
		sc.validateHID(v, p)
	case "serial":
		// A USB serial scanner may be found by match instead of port, as a
		// hid one is (read from sysfs at start; see cmd/scangw). Both at
		// once would leave the reader guessing which one wins.
		m := sc.Match
		hasMatch := m.VID != 0 || m.PID != 0 || m.Serial != "" || m.Interface != nil || m.Path != ""
		switch {
		case sc.Port != "" && hasMatch:
			v.add(p+".match", "give port or match, not both")
		case sc.Port == "" && !hasMatch:
			v.add(p+".port", "required (or match: {vid, pid} for a USB serial scanner)")
		case sc.Port == "" && m.VID == 0 && m.Path == "":
			v.add(p+".match", "a serial scanner found by match needs match.vid (with match.pid) or match.path")
		case sc.Port != "" && (!path.IsAbs(sc.Port) || strings.ContainsRune(sc.Port, 0)):
			v.add(p+".port", "must be an absolute device path like /dev/ttyACM0")
		}
		if m.VID < 0 || m.VID > 0xFFFF {
			v.add(p+".match.vid", "must be 0x0000 to 0xFFFF")
		}
		if m.PID < 0 || m.PID > 0xFFFF {
			v.add(p+".match.pid", "must be 0x0000 to 0xFFFF")
		}
		if m.Interface != nil && (*m.Interface < 0 || *m.Interface > 255) {
			v.add(p+".match.interface", "must be 0 to 255")
		}
		if !slices.Contains(baudRates, sc.Baud) {
			v.add(p+".baud", "must be one of %s", listInt(baudRates))
		}
	case "tcp":
		sc.validateTCP(v, p)
	default:
		v.add(p+".type", scannerTypeRule)
	}
	sc.validateFraming(v, p)
	if n := len(sc.Terminator); n < 1 || n > maxTerminator {
		v.add(p+".terminator", "must be 1 to %d bytes", maxTerminator)
	}
	if sc.MaxFrame < minFrame || sc.MaxFrame > maxFrameLimit {
		v.add(p+".max_frame", "must be %d to %d", minFrame, maxFrameLimit)
	}
	for _, f := range []struct{ key, val string }{
		{"good", sc.Feedback.Good}, {"bad", sc.Feedback.Bad}, {"warn", sc.Feedback.Warn}, {"noread", sc.Feedback.NoRead},
	} {
		if len(f.val) > maxFeedbackLen {
			v.add(p+".feedback."+f.key, "must be at most %d bytes", maxFeedbackLen)
		}
	}
}

// validID reports whether s is 1 to max characters of [A-Za-z0-9._-].
var (
	hidProtocols = []string{"wedge", "hidpos"}
	hidLayouts   = []string{"us", "uk", "de", "fr"}
)

func (sc *Scanner) validateHID(v *validator, p string) {
	m := sc.Match
	if m.VID == 0 && m.Path == "" {
		v.add(p+".match", "a hid scanner needs match.vid (with match.pid) or match.path")
	}
	if m.VID < 0 || m.VID > 0xFFFF {
		v.add(p+".match.vid", "must be 0x0000 to 0xFFFF")
	}
	if m.PID < 0 || m.PID > 0xFFFF {
		v.add(p+".match.pid", "must be 0x0000 to 0xFFFF")
	}
	if m.Interface != nil && (*m.Interface < 0 || *m.Interface > 255) {
		v.add(p+".match.interface", "must be 0 to 255")
	}
	if sc.Port != "" {
		v.add(p+".port", "is for serial scanners; a hid scanner is found by match")
	}
	if !slices.Contains(hidProtocols, sc.Protocol) {
		v.add(p+".protocol", "must be one of %s", list(hidProtocols))
	}
	if !slices.Contains(hidLayouts, sc.Layout) {
		v.add(p+".layout", "must be one of %s", list(hidLayouts))
	}
	if sc.Gap < 0 {
		v.add(p+".gap", "must not be negative")
	}
}

func validID(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '.' || b == '_' || b == '-'
		if !ok {
			return false
		}
	}
	return true
}

func list(s []string) string { return strings.Join(s, ", ") }

func listInt(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return list(s)
}

// Limits of a scanner's framing and code options.
const (
	maxPrefix      = 16
	maxSplit       = 8
	maxNoRead      = 8
	maxNoReadLen   = 64
	maxDebounce    = time.Hour
	framingOptions = "terminator, stx_etx"
)

func (sc *Scanner) validateTCP(v *validator, p string) {
	switch {
	case sc.Connect != "" && sc.Listen != "":
		v.add(p+".listen", "give connect or listen, not both")
	case sc.Connect == "" && sc.Listen == "":
		v.add(p+".connect", "required (host:port of the reader), or listen: addr:port for a reader that connects to the gateway")
	case sc.Connect != "":
		if host, port, err := net.SplitHostPort(sc.Connect); err != nil || host == "" || !validPort(port) {
			v.add(p+".connect", "must be host:port like 10.0.4.21:2001")
		}
	default:
		if _, port, err := net.SplitHostPort(sc.Listen); err != nil || !validPort(port) {
			v.add(p+".listen", "must be addr:port like 0.0.0.0:2112 (or :2112)")
		}
	}
	for i, a := range sc.Allow {
		if _, err := netip.ParsePrefix(a); err != nil {
			v.add(fmt.Sprintf("%s.allow[%d]", p, i), "must be a network like 10.0.4.0/24 or 10.0.4.21/32")
		}
	}
	if len(sc.Allow) > 0 && sc.Listen == "" {
		v.add(p+".allow", "is for listen: a reader connecting to the gateway")
	}
	if sc.IdleTimeout != 0 && sc.IdleTimeout.D() < time.Second {
		v.add(p+".idle_timeout", "must be 0 (off) or at least 1s")
	}
	if sc.Port != "" {
		v.add(p+".port", "is for serial scanners; a tcp scanner has connect or listen")
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// validateFraming checks what serial and tcp scanners share: framing,
// prefix, no-read strings, split and debounce.
func (sc *Scanner) validateFraming(v *validator, p string) {
	if sc.Framing != "terminator" && sc.Framing != "stx_etx" {
		v.add(p+".framing", "must be one of %s", framingOptions)
	}
	if len(sc.Prefix) > maxPrefix {
		v.add(p+".prefix", "must be at most %d bytes", maxPrefix)
	}
	if len(sc.Split) > maxSplit {
		v.add(p+".split", "must be at most %d bytes", maxSplit)
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"noread", sc.NoRead}, {"heartbeat", sc.Heartbeat}} {
		if len(l.list) > maxNoRead {
			v.add(p+"."+l.key, "at most %d strings", maxNoRead)
		}
		for i, s := range l.list {
			if s == "" || len(s) > maxNoReadLen {
				v.add(fmt.Sprintf("%s.%s[%d]", p, l.key, i), "must be 1 to %d bytes", maxNoReadLen)
			}
		}
	}
	if sc.Debounce < 0 || sc.Debounce.D() > maxDebounce {
		v.add(p+".debounce", "must be 0 to %v", maxDebounce)
	}
	if sc.Type == "hid" {
		for _, f := range []struct {
			key string
			set bool
		}{{"framing", sc.Framing != "terminator"}, {"prefix", sc.Prefix != ""}, {"noread", len(sc.NoRead) > 0},
			{"split", sc.Split != ""}, {"heartbeat", len(sc.Heartbeat) > 0}, {"feedback.noread", sc.Feedback.NoRead != ""}} {
			if f.set {
				v.add(p+"."+f.key, "is for serial and tcp scanners")
			}
		}
	}
	if sc.Type != "tcp" {
		for _, f := range []struct {
			key string
			set bool
		}{{"connect", sc.Connect != ""}, {"listen", sc.Listen != ""}, {"allow", len(sc.Allow) > 0}, {"idle_timeout", sc.IdleTimeout != 0}} {
			if f.set {
				v.add(p+"."+f.key, "is for tcp scanners")
			}
		}
	}
}
