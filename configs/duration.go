package configs

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// String formats d the way Go does, for example "1m0s" or "250ms".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a duration string, so that a marshalled config
// loads back unchanged.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string such as "30s" or "250ms". A bare
// number is refused: "30" could mean seconds or nanoseconds, and a wrong
// guess would show only when a connection times out.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.ShortTag() == "!!null" {
		*d = 0
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return durationError(n, "want a duration like 30s or 250ms")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return durationError(n, err.Error())
	}
	*d = Duration(v)
	return nil
}

// durationError is a *yaml.TypeError so that the decoder carries on and
// reports the other bad fields too, instead of stopping at the first.
func durationError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q, want a number with a unit like 30s or 250ms", s)
	}
	return v, nil
}
