package dest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Check probes the bucket with the uploader's keys: the probe write, then what the store or
// bucket lacks that the archives' safety relies on (versioning, Object Lock, lifecycle rules,
// conditional writes, RETENTION's rules and markers).
func (s3Kind) Check(ctx context.Context, r spec.Checker, env spec.Env, all []spec.Archive, i int) {
	a := all[i]
	own, _ := s3store.SettingsOf(a)
	s, err := ResolveS3(env, a)
	if err != nil {
		r.Fail("archive %v", err)
		return
	}
	client, err := S3Client(ctx, env, a)
	if err != nil {
		r.Fail("archive %v", err)
		return
	}
	endpoint := EffectiveEndpoint(env, a)
	if !OnAWS(endpoint) && s.StorageClass != "" && s.StorageClass != "STANDARD" {
		r.Warn("archive %s: storage class %s is Amazon S3's; %s is not AWS, and S3-compatible providers mostly lack it (the Glacier classes above all): uploads may be refused", a, s.StorageClass, EndpointHost(endpoint))
		r.Fix("leave storage_class= out of this destination's URL (STANDARD), and S3_STORAGE_CLASS unset if it applies to it")
	}
	st := newS3Store(client, env, a, s)
	explain := func(err error) (string, string) { return explainS3(err, s.Checksum) }
	if spec.ProbeWrite(ctx, r, a, st, explain) {
		probeMultipart(ctx, r, a, st, s.Checksum)
	}

	ictx, cancel := context.WithTimeout(ctx, spec.ProbeTimeout)
	defer cancel()
	setup := "pgoffsite setup-bucket"
	if s3Count(all) > 1 {
		setup = fmt.Sprintf("pgoffsite setup-bucket --destination %d", i+1)
	}
	checkFeatures(r, a, bucket.Inspect(ictx, client, own.Bucket), setup)
	if env.Retention.Set() {
		checkRetention(ictx, r, env, a, client, st, setup)
	}
}

// explainS3 is the problem and the fix of an S3 error, for the preflight; a refusal of the
// checksum headers names checksum=, the parameter that fixes it.
func explainS3(err error, c s3store.Checksum) (string, string) {
	if s3err.ChecksumRefused(err) {
		return fmt.Sprintf("the store refuses the checksum headers (x-amz-checksum-*) that %s%s sends", s3store.ChecksumParam, c),
			"set " + s3store.ChecksumParam + "md5 on this destination in ARCHIVE_URL (Content-MD5, which every S3 implementation honours)"
	}
	if e, ok := s3err.As(err); ok {
		return e.Problem(), e.Fix()
	}
	return "", ""
}

// probeMultipart is the preflight's multipart upload: what a backup larger than one part sends,
// with the destination's checksum and a conditional completion (s3store.ProbeMultipart), naming
// the first step the store refuses and its fix. It sends 5 MiB and a byte, holds one 5 MiB
// buffer, and leaves a few bytes (the upload itself is aborted).
func probeMultipart(ctx context.Context, r spec.Checker, a spec.Archive, st *s3store.Store, c s3store.Checksum) {
	ctx, cancel := context.WithTimeout(ctx, spec.ProbeTimeout)
	defer cancel()
	key := fmt.Sprintf("_pgoffsite-check/%s-multipart.txt", time.Now().UTC().Format("20060102T150405.000000000Z"))
	honoured, err := st.ProbeMultipart(ctx, key)
	if err != nil {
		var pe *s3store.ProbeError
		step := "the multipart probe"
		if errors.As(err, &pe) {
			step = pe.Step
		}
		problem, fix := explainS3(err, c)
		if problem == "" {
			problem = err.Error()
		}
		r.Fail("archive %s: a multipart upload as a backup sends it fails at %s: %s", a, step, problem)
		if fix != "" {
			r.Fix("%s", fix)
		}
		return
	}
	if c.Strong() && st.Checksum() == s3store.ChecksumMD5 {
		r.Warn("archive %s: the store refuses the checksum headers (x-amz-checksum-*): backups fall back to Content-MD5 at their first request, with a warning; add %smd5 to this destination in ARCHIVE_URL", a, s3store.ChecksumParam)
	}
	r.OK("archive %s: a multipart upload of two parts with %s checksums works (probe: %s sent, the upload aborted)", a, st.Checksum(), units.IEC(s3store.ProbeBytes))
	switch {
	case st.ConditionalWritesUnsupported():
		r.Warn("archive %s: the store rejects conditional writes (If-None-Match: *): archives are written without the check that nothing is there yet, so one run could replace another's copy; keep versioning on so the older copy survives", a)
	case !honoured:
		r.Warn("archive %s: the store completes a multipart upload over an existing object despite If-None-Match: *: one run could replace another's copy; keep versioning on so the older copy survives (the probe's 5 MiB object at %s is for the lifecycle rules or the bucket owner to remove)", a, st.Location(key))
	}
}

// featureLines are what the preflight says of one safety feature in each state: formats of the
// destination ([1]) and the command that turns the feature on ([2]); "" says nothing.
type featureLines struct{ on, off, unsupported string }

// checkFeatures reports the bucket's safety features; setup is the command that turns them on.
func checkFeatures(r spec.Checker, a spec.Archive, f bucket.Features, setup string) {
	for _, x := range []struct {
		state bucket.Support
		lines featureLines
	}{
		{f.Versioning, featureLines{
			on:          "archive %[1]s: versioning is on (an overwrite or delete keeps the older bytes)",
			off:         "archive %[1]s: versioning is off: an overwrite or a delete destroys an archive's bytes; run `%[2]s` with the bucket owner's keys",
			unsupported: "archive %[1]s: the store does not implement versioning: an overwrite or a delete destroys an archive's bytes; only keys that cannot delete (see `pgoffsite policy`) protect the archives there",
		}},
		{f.ObjectLock, featureLines{
			on:          "archive %[1]s: Object Lock is enabled",
			unsupported: "archive %[1]s: the store does not implement Object Lock: whoever holds the bucket owner's keys can delete archives before they expire",
		}},
		{f.Lifecycle, featureLines{
			on:          "archive %[1]s: lifecycle rules are set",
			off:         "archive %[1]s: no lifecycle rules: archives are kept (and paid for) forever, and the parts of interrupted uploads are never cleaned up; run `%[2]s`",
			unsupported: "archive %[1]s: the store does not implement lifecycle rules: old archives never expire and the parts of interrupted uploads stay; remove them with the provider's own tools",
		}},
	} {
		switch l := x.lines; {
		case x.state == bucket.On && l.on != "":
			r.OK(l.on, a, setup)
		case x.state == bucket.Off && l.off != "":
			r.Warn(l.off, a, setup)
		case x.state == bucket.Unsupported && l.unsupported != "":
			r.Warn(l.unsupported, a, setup)
		}
	}
}

// checkRetention checks what RETENTION needs of an S3 destination: that the uploader can look up
// the markers, and that the bucket's lifecycle rules are RETENTION's.
func checkRetention(ctx context.Context, r spec.Checker, env spec.Env, a spec.Archive, client *s3.Client, st *s3store.Store, setup string) {
	own, _ := s3store.SettingsOf(a)
	if _, err := st.MarkerExists(ctx, retention.MarkerPrefix+"_check"); err != nil {
		r.Fail("archive %s: the retention markers cannot be looked up: %v", a, err)
		r.Fix("give the uploader the policy `pgoffsite policy` prints: it may list %s and tag archives; without it every archive is kept as the longest class", bucket.MarkerPrefix(own.Prefix))
	} else {
		r.OK("archive %s: the retention markers can be looked up", a)
	}
	drift, err := bucket.RetentionDrift(ctx, client, bucket.Options{Bucket: own.Bucket, Prefix: own.Prefix, Retention: env.Retention,
		TransitionDays: env.TransitionDays, NoncurrentExpireDays: env.NoncurrentExpireDays})
	switch {
	case errors.Is(err, bucket.ErrRulesUnreadable):
		r.Warn("archive %s: these keys cannot see the lifecycle rules (the uploader's never can), so whether they match RETENTION is not known; run `pgoffsite check` with the reader's keys (`pgoffsite policy --reader`), or `%s --dry-run` with the owner's", a, setup)
	case err != nil:
		r.Warn("archive %s: the lifecycle rules could not be compared with RETENTION: %v", a, err)
	case len(drift) > 0:
		r.Fail("archive %s: the bucket's lifecycle rules do not match RETENTION (%s differ): archives would not be kept as RETENTION says", a, strings.Join(drift, ", "))
		r.Fix("run `%s` with the bucket owner's keys and the same RETENTION", setup)
	default:
		r.OK("archive %s: the lifecycle rules match RETENTION", a)
	}
}

// s3Count is how many of the destinations all are S3 buckets.
func s3Count(all []spec.Archive) int {
	n := 0
	for _, a := range all {
		if _, ok := s3store.SettingsOf(a); ok {
			n++
		}
	}
	return n
}

// EndpointHost names an endpoint for people, without any path or query.
func EndpointHost(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return "the endpoint"
}
