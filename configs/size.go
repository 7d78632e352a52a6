package configs

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a byte count written as an integer or with a unit: 512MiB, 4GiB,
// 100MB, 64KiB.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// String formats s with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalYAML writes s with its unit, so a marshalled config loads back.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML reads a byte count.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.ShortTag() == "!!null" {
		*s = 0
		return nil
	}
	v, err := parseSize(n)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*s = Size(v)
	return nil
}

func parseSize(n *yaml.Node) (int64, error) {
	bad := fmt.Errorf("invalid size %q, want bytes or a number with a unit like 512MiB or 4GiB", n.Value)
	if n.Kind != yaml.ScalarNode {
		return 0, bad
	}
	text := strings.TrimSpace(n.Value)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(text, u.suffix); ok {
			text, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, bad
	}
	return v * mult, nil
}
