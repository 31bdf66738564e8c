package store

import "context"

// Caps is what a destination can do besides Put, as its kind declares it when it is opened: a
// field is nil (or false) where the destination, or the credentials it was opened with, cannot.
// The pipeline and the commands read these fields and nothing else, so a store that leaves one
// out is seen to lack it (and the conformance suite checks every one it declares).
type Caps struct {
	// Reader reads the destination back (verify, status, restore); nil where the credentials
	// may only write (an S3 uploader's).
	Reader Reader
	// Markers looks up retention markers (RETENTION).
	Markers Markers
	// Records writes the small records kept beside an archive (.verified.json), replacing the
	// last one.
	Records Recorder
	// Stale removes the temporary files of runs killed mid-upload.
	Stale StaleRemover
	// Remove deletes an object: a directory or an SFTP account may delete what it wrote; an S3
	// uploader may not, by design.
	Remove Remover
	// Abort aborts a multipart upload a fan-out child left open.
	Abort Aborter
	// ConditionalWritesUnsupported, when set, tells whether the store has rejected
	// If-None-Match: Put then fell back to writes that can replace an object.
	ConditionalWritesUnsupported func() bool
	// Close ends the destination's connection; nil when it holds none.
	Close func() error
}

// Markers tells whether a retention marker exists (retention.Markers).
type Markers interface {
	MarkerExists(ctx context.Context, key string) (bool, error)
}

// Recorder writes a small object, replacing the one at key.
type Recorder interface {
	Replace(ctx context.Context, key string, body []byte) error
}

// StaleRemover finds and removes the temporary files of runs killed mid-upload, naming them.
type StaleRemover interface {
	RemoveStale(ctx context.Context) ([]string, error)
}

// Aborter aborts a multipart upload a child logged as open; ok is false when the upload is not
// in its bucket (coordinator.Aborter).
type Aborter interface {
	AbortUpload(ctx context.Context, location, uploadID string) (ok bool, err error)
}
