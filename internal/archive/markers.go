package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// classify is the retention decision, made before the upload: the class (RETENTION) is a tag
// set by the request that creates the object.
func (j *Job) classify(ctx context.Context, log zerolog.Logger, meta catalog.Meta, res *Result, obj *store.Object) retention.Decision {
	if !j.Retention.Set() {
		return retention.Decision{}
	}
	dec := j.decideRetention(ctx, log, meta)
	res.Retention = string(dec.Class)
	obj.Tags = map[string]string{retention.TagKey: res.Retention}
	return dec
}

// decideRetention gives the archive its class from the first destination that can tell which
// periods already have an archive; the other copies get the same class, so that every copy of
// one backup is kept alike. When none can tell, the archive gets the longest class listed: a
// period is never lost, at the cost of keeping this archive longer.
func (j *Job) decideRetention(ctx context.Context, log zerolog.Logger, meta catalog.Meta) retention.Decision {
	at := meta.FinishedAt
	if at.IsZero() {
		at = meta.At // a dump's start time: it finishes only after the upload
	}
	zone := j.RetentionZone
	if zone == nil {
		zone = time.UTC
	}
	db := catalog.KeyDatabase(meta.Database)
	var failed []string
	for _, d := range j.Destinations {
		if d.Markers == nil {
			continue
		}
		dec, err := j.Retention.Decide(ctx, d.Markers, meta.App, db, at, zone)
		if err == nil {
			return dec
		}
		failed = append(failed, d.Name)
		log.Warn().Str("destination", d.Name).Err(err).Msg("cannot read the retention markers there")
	}
	dec := j.Retention.Longest(meta.App, db, at, zone)
	log.Warn().Strs("destinations", failed).Str("retention", string(dec.Class)).
		Str("hint", "fix what the warning of each destination above says; for an S3 destination, `pgoffsite check` names the permission its keys lack").
		Msg("no destination could tell whether this period already has an archive: it is kept as the longest class so that no period is lost")
	return dec
}

// writeMarkers records, at every destination that holds markers and has the archive, that the
// archive's periods have one. They are written only now, after the archive is stored: a run
// that dies before leaves the period open for the next archive, never a period without one.
// Markers are created, never overwritten; a marker that exists already (two runs at once) is
// fine. A marker that cannot be written is a warning: the next archive of the period then gets
// the class too.
func (j *Job) writeMarkers(ctx context.Context, log zerolog.Logger, dec retention.Decision, key string, copies []Copy) {
	if len(dec.Markers) == 0 {
		return
	}
	body, _ := json.Marshal(map[string]string{"key": key, "retention": string(dec.Class)})
	for i, d := range j.Destinations {
		if d.Markers == nil || copies[i].Err != nil {
			continue
		}
		for _, mk := range dec.Markers {
			err := d.Store.Put(ctx, store.Object{Key: mk, Size: int64(len(body)), ContentType: "application/json"}, bytes.NewReader(body))
			if err != nil && !errors.Is(err, store.ErrExists) {
				log.Warn().Str("destination", d.Name).Str("marker", mk).Err(err).
					Msg("cannot write the retention marker: the next archive of this period is kept as long as this one")
			}
		}
	}
}
