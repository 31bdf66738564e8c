package coordinator

import (
	"strings"
	"testing"
	"time"
)

// A child stopped at its time to live is told what sets it: BACKUP_CAPTURE_TIMEOUT, twice, at
// most 24 h.
func TestDynoTTLFixNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		capture time.Duration
		want    string
	}{
		{6 * time.Hour, "the time to live is twice BACKUP_CAPTURE_TIMEOUT (6h0m0s): raise BACKUP_CAPTURE_TIMEOUT"},
		{12 * time.Hour, "the time to live is twice BACKUP_CAPTURE_TIMEOUT (12h0m0s), capped at 24 h"},
	} {
		if got := TimeToLiveFix(tc.capture); !strings.Contains(got, tc.want) {
			t.Errorf("BACKUP_CAPTURE_TIMEOUT=%s: %q, want %q", tc.capture, got, tc.want)
		}
	}
}
