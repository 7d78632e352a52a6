// Package configs holds scangw's configuration schema: the YAML file a fleet
// tool templates and pushes to every gateway.
//
// A Config is plain data. Load reads a file strictly (unknown keys are
// errors), fills every unset field with its default, and runs Validate, which
// reports every bad field by its path (for example
// "stations[1].scanners[0].baud: must be one of ...") before any I/O happens.
// New keys always get a default, so a config that loaded once keeps loading.
package configs

import (
	"crypto/ed25519"
	"time"
)

// Config is the whole gateway configuration.
type Config struct {
	Gateway Gateway `yaml:"gateway"`
	Buffer  Buffer  `yaml:"buffer"`
	MQTT    MQTT    `yaml:"mqtt"`
	HTTP    HTTP    `yaml:"http"`
	Log     Log     `yaml:"log"`
	Rules   Rules   `yaml:"rules"`
	// Documents classify reads as documents at every station, after a
	// station's own.
	Documents []Document `yaml:"documents"`
	// EPCIS renders stations' facts as GS1 EPCIS 2.0 events too.
	EPCIS EPCIS `yaml:"epcis"`
	// Serials are the schemes stations assign serials from.
	Serials []SerialScheme `yaml:"serials"`
	// Printers are label printers stations print assigned serials on.
	Printers []Printer `yaml:"printers"`
	Stations []Station `yaml:"stations"`
}

// Gateway identifies this box in topics and events.
type Gateway struct {
	ID   string `yaml:"id"`
	Site string `yaml:"site"`
}

// Buffer configures the durable scan store.
type Buffer struct {
	// Dir is the Badger directory; created (0750) when missing.
	Dir string `yaml:"dir"`
	// MaxScans caps the scans waiting for the broker. When full, new scans
	// are refused (bad signal), never older ones dropped.
	MaxScans int64 `yaml:"max_scans"`
	// MaxBytes caps the buffer directory's size on disk.
	MaxBytes Size `yaml:"max_bytes"`
	// MinFree is the free space the buffer leaves on its filesystem.
	MinFree Size `yaml:"min_free"`
	// HighWater is the fraction of max_scans or max_bytes at which the
	// buffer warns (log, scangw_buffer_high_water).
	HighWater float64 `yaml:"high_water"`
	// AuditWindow keeps delivered scans this long after the broker's
	// PUBACK, so a resend command can repair a gap (0: off).
	AuditWindow Duration `yaml:"audit_window"`
	// SeenRetention is how long the seen-serial index (duplicate rules)
	// remembers a serial.
	SeenRetention Duration `yaml:"seen_retention"`
}

// MQTT configures the uplink session.
type MQTT struct {
	// Broker is tcp://host:port (mqtt:// is accepted as a synonym; ssl://
	// and mqtts:// pass validation ahead of the TLS options).
	// Default tcp://127.0.0.1:1883.
	Broker string `yaml:"broker"`
	// Brokers are the addresses of one broker cluster, given instead of
	// Broker: a failed connection moves on to the next, round the list;
	// a working one is kept. All use TLS or none does.
	Brokers []string `yaml:"brokers"`
	// TopicPrefix is used verbatim as the first topic levels.
	TopicPrefix string `yaml:"topic_prefix"`
	// ClientID defaults to "scangw-<gateway.id>".
	ClientID string `yaml:"client_id"`
	// Inflight is the window of unacknowledged QoS 1 publishes.
	Inflight int `yaml:"inflight"`
	// KeepAlive bounds how long a half-open connection goes unnoticed.
	KeepAlive Duration `yaml:"keepalive"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// WriteTimeout bounds one publish write.
	WriteTimeout Duration `yaml:"write_timeout"`
	// ReconnectMin and ReconnectMax bound the reconnect backoff.
	ReconnectMin Duration `yaml:"reconnect_min"`
	ReconnectMax Duration `yaml:"reconnect_max"`

	// Username authenticates the gateway to the broker. Its password
	// comes from at most one of PasswordFile, PasswordEnv and Password.
	Username string `yaml:"username"`
	// Password is the password written into this file. PasswordFile or
	// PasswordEnv keep it out of a file that a fleet tool templates and
	// pushes; prefer them.
	Password string `yaml:"password"`
	// PasswordFile is read at every connect (a trailing newline is not
	// part of the password).
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// TLS configures ssl:// and mqtts:// brokers.
	TLS TLS `yaml:"tls"`

	// MaxPayload caps a published message; a larger one stays in the
	// buffer unsent (and is reported) instead of getting the gateway
	// disconnected.
	MaxPayload Size `yaml:"max_payload"`
	// Heartbeat is the interval of the heartbeat event.
	Heartbeat Duration `yaml:"heartbeat"`
	// MaxCommand caps a downlink command; larger ones get an error reply.
	MaxCommand Size `yaml:"max_command"`
	// CommandKeys are base64 Ed25519 public keys; when any is given, every
	// downlink command must be signed by one of them.
	CommandKeys []string `yaml:"command_keys"`
}

// TLS holds the files of a TLS connection to the broker. The broker's
// name is always checked.
type TLS struct {
	// CAFile is a PEM bundle of the CAs the broker's certificate must
	// chain to; empty means the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM) for mutual TLS: both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the broker's certificate must carry when it
	// differs from the host in broker.
	ServerName string `yaml:"server_name"`
}

// CommandPublicKeys returns CommandKeys decoded. Call it on a validated
// config: a key that does not decode is left out.
func (m *MQTT) CommandPublicKeys() []ed25519.PublicKey {
	var keys []ed25519.PublicKey
	for _, s := range m.CommandKeys {
		if k, err := parsePublicKey(s); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// HTTP configures the metrics, health and status endpoint.
type HTTP struct {
	// Listen is host:port, default 127.0.0.1:9754; an explicit ""
	// disables the server. Bound to anything but a loopback address it
	// requires Token or TokenFile.
	Listen string `yaml:"listen"`
	// Token guards the status page (/, /status and its live updates):
	// a browser logs in once with ?token=, a client sends
	// "Authorization: Bearer <token>". At least 16 characters. Prefer
	// TokenFile, which keeps it out of a templated config.
	Token string `yaml:"token"`
	// TokenFile holds the token (a trailing newline is not part of it);
	// it is read at start and at every reload.
	TokenFile string `yaml:"token_file"`
	// Open are the paths that need no token even when one is set: any of
	// /metrics, /healthz and /readyz. Default all three, so Prometheus and
	// a load balancer's health check work unchanged; [] guards them too.
	Open []string `yaml:"open"`
}

// Guarded reports whether the HTTP server needs a token: it listens on
// something other than a loopback address.
// BrokerURLs are the broker addresses in the order they are tried.
func (m *MQTT) BrokerURLs() []string {
	if len(m.Brokers) > 0 {
		return m.Brokers
	}
	return []string{m.Broker}
}

func (h *HTTP) Guarded() bool {
	return h.Listen != "" && !loopbackListen(h.Listen)
}

// Rules configures the validation rule engine. Rule sets arrive from File
// at start and on the retained MQTT rules topics; each must be signed by
// one of Keys, unless AllowUnsigned (and then Keys must be empty).
type Rules struct {
	// Keys are base64 Ed25519 public keys trusted to sign rule sets.
	Keys []string `yaml:"keys"`
	// AllowUnsigned accepts unsigned rule sets (for a lab, never a dock).
	AllowUnsigned bool `yaml:"allow_unsigned"`
	// File is a signed rule set (envelope JSON) loaded at start; optional.
	File string `yaml:"file"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Station is one scan point: a dock door, a tunnel, a bench.
type Station struct {
	ID       string    `yaml:"id"`
	Mode     string    `yaml:"mode"` // receive, ship, return, transfer, count, pack, build, unpack, assign
	Scanners []Scanner `yaml:"scanners"`
	// MinLength and MaxLength bound the scanned text the station accepts.
	MinLength int `yaml:"min_length"`
	MaxLength int `yaml:"max_length"`
	// Debounce suppresses a read identical to one any of the station's
	// scanners read within this window (two readers of one tunnel); 0 off.
	Debounce Duration `yaml:"debounce"`
	// NoReadEvents records each reader's no-read as a buffered
	// io.scangw.noread.v1 event.
	NoReadEvents bool `yaml:"noread_events"`

	// Documents classify reads as documents (a purchase order, an SSCC,
	// a badge, a close code) that set the station's context.
	Documents []Document `yaml:"documents"`
	// GS1Documents makes an SSCC (AI 00) read a shipment document and a
	// GLN (AI 414) read a location, outside the aggregation modes.
	GS1Documents bool `yaml:"gs1_documents"`
	// ContextIdle clears the context after this long without a read
	// (0: never).
	ContextIdle Duration `yaml:"context_idle"`
	// DocumentSignal is the feedback a document read gets: good, warn
	// or bad.
	DocumentSignal string `yaml:"document_signal"`
	// Orders sets the policies for scans against the order in context.
	Orders Orders `yaml:"orders"`
	// Aggregation configures the modes pack, build and unpack.
	Aggregation Aggregation `yaml:"aggregation"`
	// EPCIS sets the station's read point and business location.
	EPCIS EPCIS `yaml:"epcis"`
	// Assign makes the station hand out serials and print their labels.
	Assign Assign `yaml:"assign"`
}

// Scanner is one device feeding a station.
type Scanner struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // serial, hid, tcp
	// Port is the device path, e.g. /dev/ttyACM0.
	Port string `yaml:"port"`
	Baud int    `yaml:"baud"`
	// Terminator ends each frame; YAML escapes give control bytes ("\r\n").
	Terminator string `yaml:"terminator"`
	// MaxFrame caps one frame in bytes; longer frames are discarded.
	MaxFrame int      `yaml:"max_frame"`
	Feedback Feedback `yaml:"feedback"`

	// Match finds a USB scanner (type hid) among the devices present.
	Match Match `yaml:"match"`
	// Protocol is how a HID scanner talks: wedge (it types like a USB
	// keyboard) or hidpos (HID POS scanned-data reports).
	Protocol string `yaml:"protocol"`
	// Layout is the keyboard layout a wedge scanner types in: us, uk, de, fr.
	Layout string `yaml:"layout"`
	// Gap ends a wedge scan that has no Enter/Tab suffix after this pause.
	Gap Duration `yaml:"gap"`
	// NoAIM says HID POS reports carry no AIM identifier (some vendors).
	NoAIM bool `yaml:"no_aim"`

	// Connect (the gateway dials the reader) or Listen (the reader
	// connects to the gateway), host:port, for a tcp scanner.
	Connect string `yaml:"connect"`
	Listen  string `yaml:"listen"`
	// Allow, for listen, lists the networks (CIDR) a reader may connect
	// from; empty allows any.
	Allow []string `yaml:"allow"`
	// IdleTimeout ends a tcp connection that sent nothing for this long
	// (a reader that died without closing it); 0 relies on TCP keepalive.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Framing is terminator (frames end at Terminator) or stx_etx
	// (0x02 ... 0x03), for serial and tcp scanners.
	Framing string `yaml:"framing"`
	// Prefix is stripped from the start of a frame.
	Prefix string `yaml:"prefix"`
	// NoRead lists frames (whole) that mean the reader read nothing.
	NoRead []string `yaml:"noread"`
	// Heartbeat lists frames a reader sends to show it is alive: dropped.
	Heartbeat []string `yaml:"heartbeat"`
	// Split cuts one frame holding several codes into several reads.
	Split string `yaml:"split"`
	// Debounce suppresses a read identical to this scanner's last one
	// within this window (a reader reading a label as it passes); 0 off.
	Debounce Duration `yaml:"debounce"`
}

// Match selects a USB device: by vendor and product id, narrowed by serial
// number or interface, or by its USB port path (for example "1-1.4:1.0").
type Match struct {
	VID       int    `yaml:"vid"`
	PID       int    `yaml:"pid"`
	Serial    string `yaml:"serial"`
	Interface *int   `yaml:"interface"`
	Path      string `yaml:"path"`
}

// Feedback holds the bytes written back to a scanner after a verdict.
type Feedback struct {
	Good string `yaml:"good"`
	Bad  string `yaml:"bad"`
	// Warn defaults to Good; an explicit "" sends nothing on a warning.
	Warn string `yaml:"warn"`
	// NoRead answers a reader's no-read (serial and tcp); "" sends nothing.
	NoRead string `yaml:"noread"`
}

// Duration is a time.Duration written as "5s", "250ms" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
