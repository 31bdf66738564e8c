package units

import (
	"testing"
	"time"
)

func TestIEC(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0.0 KiB", 512: "0.5 KiB", 4 << 20: "4.0 MiB", 512 << 20: "512.0 MiB",
		3 << 30: "3.00 GiB", 2 << 40: "2.00 TiB",
	} {
		if got := IEC(n); got != want {
			t.Errorf("IEC(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRate(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		d    time.Duration
		want string
	}{
		{84 << 20, time.Second, "84.0 MiB/s"},
		{3 << 30, 2 * time.Second, "1.50 GiB/s"},
		{512, time.Second, "0.5 KiB/s"},
		{10 << 20, 4 * time.Second, "2.5 MiB/s"},
		{1 << 20, 0, "n/a"},
	} {
		if got := Rate(tt.n, tt.d); got != tt.want {
			t.Errorf("Rate(%d, %v) = %q, want %q", tt.n, tt.d, got, tt.want)
		}
	}
	if got := PerSecond(2.5 * (1 << 20)); got != "2.5 MiB/s" {
		t.Errorf("PerSecond(2.5 MiB) = %q, want 2.5 MiB/s", got)
	}
}
