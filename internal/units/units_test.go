package units

import "testing"

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
