package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults, in one place. Every key except gateway.id, gateway.site and
// stations has one, and a key added later must get one too: a config that
// loaded once keeps loading (DESIGN.md, "Compatible").
const (
	defaultBufferDir      = "/var/lib/scangw"
	defaultMaxScans       = 5_000_000
	defaultMaxBytes       = 4 << 30
	defaultMinFree        = 256 << 20
	defaultHighWater      = 0.8
	defaultSeenRetention  = 400 * 24 * time.Hour
	defaultBroker         = "tcp://127.0.0.1:1883"
	defaultTopicPrefix    = "scangw/v1"
	defaultClientIDPrefix = "scangw-"
	defaultInflight       = 20
	defaultKeepAlive      = 30 * time.Second
	defaultConnectTimeout = 10 * time.Second
	defaultWriteTimeout   = 10 * time.Second
	defaultReconnectMin   = 500 * time.Millisecond
	defaultReconnectMax   = 60 * time.Second
	defaultMaxPayload     = 64 << 10
	defaultHeartbeat      = 30 * time.Second
	defaultMaxCommand     = 16 << 10
	defaultHTTPListen     = "127.0.0.1:9754"
	defaultLogLevel       = "info"
	defaultLogFormat      = "text"
	defaultStationMode    = "receive"
	defaultMinLength      = 1
	defaultMaxLength      = 4096
	defaultScannerType    = "serial"
	defaultBaud           = 9600
	defaultTerminator     = "\r\n"
	defaultMaxFrame       = 4096
)

// applyDefaults fills every zero field that has a default. Zero means
// "not given": inflight 0 or keepalive 0s get the default, not an error.
func (c *Config) applyDefaults() {
	setString(&c.Buffer.Dir, defaultBufferDir)
	if c.Buffer.MaxScans == 0 {
		c.Buffer.MaxScans = defaultMaxScans
	}
	if c.Buffer.MaxBytes == 0 {
		c.Buffer.MaxBytes = defaultMaxBytes
	}
	if c.Buffer.MinFree == 0 {
		c.Buffer.MinFree = defaultMinFree
	}
	if c.Buffer.HighWater == 0 {
		c.Buffer.HighWater = defaultHighWater
	}
	setDuration(&c.Buffer.SeenRetention, defaultSeenRetention)

	m := &c.MQTT
	if len(m.Brokers) == 0 {
		setString(&m.Broker, defaultBroker)
	}
	setString(&m.TopicPrefix, defaultTopicPrefix)
	if c.Gateway.ID != "" {
		setString(&m.ClientID, defaultClientIDPrefix+c.Gateway.ID)
	}
	setInt(&m.Inflight, defaultInflight)
	setDuration(&m.KeepAlive, defaultKeepAlive)
	setDuration(&m.ConnectTimeout, defaultConnectTimeout)
	setDuration(&m.WriteTimeout, defaultWriteTimeout)
	setDuration(&m.ReconnectMin, defaultReconnectMin)
	setDuration(&m.ReconnectMax, defaultReconnectMax)
	setSize(&m.MaxPayload, defaultMaxPayload)
	setDuration(&m.Heartbeat, defaultHeartbeat)
	setSize(&m.MaxCommand, defaultMaxCommand)

	setString(&c.HTTP.Listen, defaultHTTPListen)
	if c.HTTP.Open == nil { // an explicit [] guards them all
		c.HTTP.Open = slices.Clone(openablePaths)
	}
	setString(&c.Log.Level, defaultLogLevel)
	setString(&c.Log.Format, defaultLogFormat)
	c.workflowDefaults()

	for i := range c.Stations {
		st := &c.Stations[i]
		setString(&st.Mode, defaultStationMode)
		setInt(&st.MinLength, defaultMinLength)
		setInt(&st.MaxLength, defaultMaxLength)
		for j := range st.Scanners {
			sc := &st.Scanners[j]
			setString(&sc.Type, defaultScannerType)
			setString(&sc.Protocol, "wedge")
			setString(&sc.Layout, "us")
			setDuration(&sc.Gap, 300*time.Millisecond)
			setInt(&sc.Baud, defaultBaud)
			setString(&sc.Terminator, defaultTerminator)
			setString(&sc.Framing, "terminator")
			setInt(&sc.MaxFrame, defaultMaxFrame)
			setString(&sc.Feedback.Warn, sc.Feedback.Good)
		}
	}
}

// keepEmpty restores the string keys for which an explicit "" means
// something other than "use the default": an empty http.listen disables the
// server, an empty feedback.warn sends nothing on a warning even when good
// sends something, and an empty terminator is a mistake Validate must see
// rather than a "\r\n" it never asked for.
func (c *Config) keepEmpty(empty map[string]bool) {
	if empty["http.listen"] {
		c.HTTP.Listen = ""
	}
	for i := range c.Stations {
		for j := range c.Stations[i].Scanners {
			sc := &c.Stations[i].Scanners[j]
			p := fmt.Sprintf("stations[%d].scanners[%d].", i, j)
			if empty[p+"terminator"] {
				sc.Terminator = ""
			}
			if empty[p+"feedback.warn"] {
				sc.Feedback.Warn = ""
			}
		}
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setSize(p *Size, def int64) {
	if *p == 0 {
		*p = Size(def)
	}
}

func setDuration(p *Duration, def time.Duration) {
	if *p == 0 {
		*p = Duration(def)
	}
}

// Load reads the config at path and the fragments in conf.d/ beside it
// (see "A gateway's config"), with ${VAR} taken from Env. Its errors start
// with "config <path>: "; each problem names its line, and its file when
// there are fragments.
func Load(path string) (*Config, error) {
	srcs, err := readSources(path)
	if err == nil {
		var c *Config
		if c, err = parse(srcs, Env); err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("config %s: %w", path, err)
}

// Parse decodes one YAML document strictly, applies the defaults and
// validates the result. Unknown keys, duplicate keys and values of the
// wrong kind are reported together with Validate's problems in one
// *ValidationError, each by its path and line; a document that is not YAML
// at all gives yaml.v3's syntax error. An empty document is not an error by
// itself, but Validate then names the keys that have no default. ${VAR}
// references are taken from Env.
//
// A key written as null ("listen:" or "listen: ~") counts as not given. An
// explicit empty string counts as not given too, except for http.listen
// (disables the server), feedback.warn (no feedback on a warning) and
// terminator (an error).
func Parse(data []byte) (*Config, error) {
	return parse([]source{{data: data}}, Env)
}

func parse(srcs []source, env func(string) (string, bool)) (*Config, error) {
	doc, err := parseSources(srcs, env)
	if err != nil {
		return nil, err
	}

	var c Config
	var decodeErr error
	if doc.root != nil {
		decodeErr = doc.root.Decode(&c)
	}
	var typeErr *yaml.TypeError
	if decodeErr != nil && !errors.As(decodeErr, &typeErr) {
		return nil, decodeErr // e.g. excessive aliasing: nothing more to say
	}

	check := newSchemaCheck(doc.files)
	if doc.root != nil {
		check.mapping(doc.root, reflect.TypeFor[Config](), "", map[string]bool{})
	}
	check.problems = append(doc.problems, check.problems...)
	if decodeErr != nil && len(check.problems) == 0 {
		// The schema walk should have named whatever yaml.v3 refused; if it
		// missed something, yaml.v3's own words are better than nothing.
		return nil, decodeErr
	}

	c.applyDefaults()
	c.keepEmpty(check.empty)

	problems := check.problems
	var ve *ValidationError
	if err := c.Validate(); errors.As(err, &ve) {
		// A field that did not decode is zero; saying it is also "required"
		// would only repeat the decode problem.
		for _, p := range ve.Problems {
			if coveredBy(p.Path, check.problems) {
				continue
			}
			if n := locate(doc.root, p.Path); n != nil {
				p.Line, p.File = n.Line, doc.files[n]
			}
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return &c, nil
}

// parseDocument returns the content node of the only YAML document in data,
// or nil when data holds no document.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	// A second document would be silently ignored by the decoder; a fleet
	// tool that concatenated two configs must hear about it.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			return nil, fmt.Errorf("yaml: line %d: a config is one YAML document, found a second one", next.Content[0].Line)
		}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, nil
	}
	return doc.Content[0], nil
}

func coveredBy(path string, problems []Problem) bool {
	for _, p := range problems {
		if under(path, p.Path) {
			return true
		}
	}
	return false
}

// Hash returns a short, stable fingerprint of c: the first 12 hex digits of
// the SHA-256 of c marshalled back to YAML. The birth message carries it so
// that the central side can tell which config a gateway runs. Call it on a
// Config from Load or Parse: it hashes what is there and does not apply
// defaults, so a hand-built Config missing them hashes differently.
func (c *Config) Hash() string {
	data, err := yaml.Marshal(c)
	if err != nil {
		// Marshal fails only on types the schema does not have; a fingerprint
		// of the Go value is still stable within one build.
		data = fmt.Appendf(nil, "%#v", *c)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}
