package promwal

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes is a size in bytes. In YAML and on the command line it is a
// non-negative integer number of bytes or an integer with a unit: B, KiB,
// MiB, GiB, TiB, or KB, MB, GB, TB meaning the same powers of 1024, as
// Prometheus' own size flags do ("1KB is 1024B"). Units are case-insensitive.
type Bytes int64

var units = []struct {
	name string
	size int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1 << 40}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"b", 1},
}

// ParseBytes parses s as described on Bytes.
func ParseBytes(s string) (Bytes, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(num), u.size
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: want a non-negative integer number of bytes, optionally with a unit (KiB, MiB, GiB, TiB)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Bytes(n * mult), nil
}

// String renders b with the largest binary unit that divides it: "64MiB",
// "1536KiB", "100".
func (b Bytes) String() string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set parses s into b; with String it makes Bytes a command-line flag value.
func (b *Bytes) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML decodes an integer or a size string.
func (b *Bytes) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case int:
		if x < 0 {
			return fmt.Errorf("size %d must not be negative", x)
		}
		*b = Bytes(x)
		return nil
	case uint64:
		return fmt.Errorf("size %d is too large", x)
	case string:
		return b.Set(x)
	}
	return fmt.Errorf("expected a size such as 67108864 or \"64MiB\", got %v", v)
}

// MarshalYAML writes b as its String.
func (b Bytes) MarshalYAML() (any, error) { return b.String(), nil }

// human renders n bytes for people: "1.5 MiB", "812 B".
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
