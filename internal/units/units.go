// Package units formats quantities for people, one rule for every message that names a size or
// a rate: binary (IEC) units, as df -h, memory limits and ARCHIVE_PART_SIZE use, so a size in a
// log line reads the same as the setting it is compared with.
package units

import (
	"fmt"
	"time"
)

// IEC formats a byte count in binary units: "512.0 MiB", "3.00 GiB".
func IEC(n int64) string { return scaled(float64(n), "") }

// Rate formats n bytes moved in d as bytes a second, in the units of IEC: "84.2 MiB/s"; "n/a"
// when no time has passed.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return PerSecond(float64(n) / d.Seconds())
}

// PerSecond formats a rate in bytes a second, in the units of IEC: "84.2 MiB/s".
func PerSecond(bytesPerSecond float64) string { return scaled(bytesPerSecond, "/s") }

func scaled(v float64, per string) string {
	switch {
	case v >= 1<<40:
		return fmt.Sprintf("%.2f TiB%s", v/(1<<40), per)
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB%s", v/(1<<30), per)
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB%s", v/(1<<20), per)
	default:
		return fmt.Sprintf("%.1f KiB%s", v/(1<<10), per)
	}
}
