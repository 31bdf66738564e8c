package gcsstore

import (
	"context"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind is a Google Cloud Storage bucket: gs://BUCKET/prefix, its service account key's JSON in
// GOOGLE_CREDENTIALS or NAME_CREDENTIALS (keys=NAME), else Google's default credentials. The
// uploader (roles/storage.objectCreator) may only create; the reader (roles/storage.objectViewer)
// reads back.
var Kind spec.Kind = kind{}

type kind struct{ Parser }

// OpenStore opens a with the credentials it names, chunks of env.PartSize.
func OpenStore(ctx context.Context, env spec.Env, a spec.Archive) (*Store, error) {
	s, _ := SettingsOf(a)
	var key []byte
	if v := env.Getenv(s.CredentialsVar); v != "" {
		key = []byte(v)
	}
	return Open(ctx, Options{Bucket: s.Bucket, Prefix: s.Prefix, Endpoint: s.Endpoint, CredentialsJSON: key, ChunkSize: env.PartSize,
		Retention: env.Retention})
}

// Open opens a for the uploader: create only.
func (kind) Open(ctx context.Context, env spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := OpenStore(ctx, env, a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.WriterCaps(), nil
}

// OpenReader opens a for the reader (verify, status, restore, list).
func (kind) OpenReader(ctx context.Context, env spec.Env, a spec.Archive) (store.Caps, error) {
	st, err := OpenStore(ctx, env, a)
	if err != nil {
		return store.Caps{}, err
	}
	return st.ReaderCaps(), nil
}

// Check writes the probe as a backup writes an archive. Retention there is the bucket's own
// (lifecycle rules, a retention policy), which the uploader may not read: it says so.
func (k kind) Check(ctx context.Context, r spec.Checker, env spec.Env, all []spec.Archive, i int) {
	a := all[i]
	if env.Retention.Set() {
		r.Warn("archive %s: RETENTION: each archive carries its class's expiry date as its Custom-Time, but only the bucket's lifecycle deletes what is past it, and the uploader, which may only create, cannot look up the markers that tell the periods apart (another destination that can decides the class; alone, every archive is kept as the longest class)", a)
		r.Fix("apply the lifecycle `pgoffsite setup-bucket` prints for %s, as an admin of the bucket", a)
	}
	st, caps, err := k.Open(ctx, env, a)
	if err != nil {
		r.Fail("archive %s: %v", a, err)
		r.Fix("check %s: the key's JSON of this destination's service account", credentialsVar(a))
		return
	}
	defer caps.Close()
	ProbeWrite(ctx, r, a, st)
}

// ProbeWrite is spec.ProbeWrite with the fixes of Google's refusals.
func ProbeWrite(ctx context.Context, r spec.Checker, a spec.Archive, st store.Store) bool {
	return spec.ProbeWrite(ctx, r, a, st, func(err error) (string, string) { return explain(a, err) })
}

// UploadMemory: a resumable upload holds one chunk, to send it again on a retry.
func (kind) UploadMemory(partSize int64, _ int) int64 { return partSize }

func credentialsVar(a spec.Archive) string {
	s, _ := SettingsOf(a)
	if s.CredentialsVar == "" {
		return DefaultCredentialsVar
	}
	return s.CredentialsVar
}
