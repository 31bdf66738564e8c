package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/config"
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
		cfg := config.Config{CaptureTimeout: tc.capture}
		if got := dynoTTLFix(cfg); !strings.Contains(got, tc.want) {
			t.Errorf("BACKUP_CAPTURE_TIMEOUT=%s: %q, want %q", tc.capture, got, tc.want)
		}
	}
}
