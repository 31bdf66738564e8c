package report

import (
	"errors"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/status"
)

// Status turns a status report into the run's results, one per target and destination, for its
// notification, and logs each entry that has a problem; problems counts them.
func Status(log zerolog.Logger, rep status.Report) (results []archive.Result, problems int) {
	for _, e := range rep.Targets {
		r := archive.Result{Target: archive.Target{App: e.App, Database: e.Database}, Location: e.Destination}
		if e.Newest != nil {
			r.Backup, r.Bytes = e.Newest.Backup, e.Newest.Bytes
		}
		if !e.OK() {
			problems++
			r.Err = errors.New(strings.Join(e.Problems, "; "))
			log.Error().Str("app", e.App).Str("database", e.Database).Str("destination", e.Destination).Str("backup", r.Backup).
				Err(r.Err).Msg("status: PROBLEM")
		}
		results = append(results, r)
	}
	return results, problems
}
