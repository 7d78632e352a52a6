package configs

import (
	"net/url"

	"go.yaml.in/yaml/v3"
)

// redacted stands in for a secret in a printed config.
const redacted = "<redacted>"

// Redacted returns a copy of c with its secrets (the MQTT password, a
// password in the broker URL, the HTTP token) replaced, for printing. Names
// of files and variables that hold secrets are not secrets and stay.
func (c *Config) Redacted() *Config {
	r := *c
	if r.MQTT.Password != "" {
		r.MQTT.Password = redacted
	}
	if u, err := url.Parse(r.MQTT.Broker); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
			r.MQTT.Broker = u.String()
		}
	}
	if r.HTTP.Token != "" {
		r.HTTP.Token = redacted
	}
	return &r
}

// YAML is c as YAML, every key with its value (defaults included).
func (c *Config) YAML() ([]byte, error) {
	return yaml.Marshal(c)
}
