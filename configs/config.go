// Package configs holds scangw's configuration schema: the YAML file a fleet
// tool templates and pushes to every gateway.
//
// A Config is plain data. Load reads a file strictly (unknown keys are
// errors), fills every unset field with its default, and runs Validate, which
// reports every bad field by its path (for example
// "stations[1].scanners[0].baud: must be one of ...") before any I/O happens.
// New keys always get a default, so a config that loaded once keeps loading.
package configs

import "time"

// Config is the whole gateway configuration.
type Config struct {
	Gateway  Gateway   `yaml:"gateway"`
	Buffer   Buffer    `yaml:"buffer"`
	MQTT     MQTT      `yaml:"mqtt"`
	HTTP     HTTP      `yaml:"http"`
	Log      Log       `yaml:"log"`
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
}

// MQTT configures the uplink session.
type MQTT struct {
	// Broker is tcp://host:port (mqtt:// is accepted as a synonym; ssl://
	// and mqtts:// pass validation ahead of the TLS options).
	// Default tcp://127.0.0.1:1883.
	Broker string `yaml:"broker"`
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
}

// HTTP configures the metrics, health and status endpoint.
type HTTP struct {
	// Listen is host:port, default 127.0.0.1:9754; an explicit ""
	// disables the server.
	Listen string `yaml:"listen"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Station is one scan point: a dock door, a tunnel, a bench.
type Station struct {
	ID       string    `yaml:"id"`
	Mode     string    `yaml:"mode"` // receive, ship, return, transfer, count
	Scanners []Scanner `yaml:"scanners"`
	// MinLength and MaxLength bound the scanned text the station accepts.
	MinLength int `yaml:"min_length"`
	MaxLength int `yaml:"max_length"`
}

// Scanner is one device feeding a station.
type Scanner struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // serial, hid
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
}

// Duration is a time.Duration written as "5s", "250ms" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
