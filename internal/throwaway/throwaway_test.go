package throwaway

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

var kind = Kind{Prefix: "pgoffsite-test-", Noun: "test database", Job: "test", TimeoutVar: "TEST_TIMEOUT"}

// Names carry the prefix, the UTC time and a random tail, in lower case (add-on names are).
func TestName(t *testing.T) {
	n := kind.Name(time.Date(2026, 12, 1, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if !strings.HasPrefix(n, "pgoffsite-test-20261201-020405-") || len(n) != len("pgoffsite-test-20261201-020405-abcd") || strings.ToLower(n) != n {
		t.Errorf("name %q", n)
	}
	if kind.Name(time.Now()) == kind.Name(time.Now()) {
		t.Error("two names in one second are equal")
	}
}

// Left-overs are the kind's add-ons older than the bound; younger ones are logged and left, and
// other add-ons (and those of unknown age) are never touched.
func TestLeftovers(t *testing.T) {
	now := time.Now()
	list := []heroku.Addon{
		{Name: "pgoffsite-test-old", CreatedAt: now.Add(-3 * time.Hour)},
		{Name: "pgoffsite-test-young", CreatedAt: now.Add(-time.Minute)},
		{Name: "pgoffsite-test-undated"},
		{Name: "postgresql-solid-1", CreatedAt: now.Add(-30 * time.Hour)},
	}
	var log bytes.Buffer
	got := kind.Leftovers(list, 2*time.Hour, zerolog.New(&log))
	if len(got) != 1 || got[0].Name != "pgoffsite-test-old" {
		t.Errorf("left-overs %+v", got)
	}
	if !strings.Contains(log.String(), "a test database younger than TEST_TIMEOUT is on the app: left alone (another test may be using it)") ||
		!strings.Contains(log.String(), "pgoffsite-test-young") {
		t.Errorf("log %s", log.String())
	}
}
