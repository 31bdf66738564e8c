package spec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind is one kind of destination: how its URLs read, how its destinations open for writing
// and reading, how `pgoffsite check` probes them, and what memory an upload to one takes.
// Adding a destination is a value of this interface in the kind's package and one line in
// dest's table.
type Kind interface {
	Parser
	// Open opens a for writing archives, the way a backup does: its Store, and its Caps.
	Open(ctx context.Context, env Env, a Archive) (store.Store, store.Caps, error)
	// OpenReader opens a for reading archives back (verify, status, restore): Caps.Reader is set.
	OpenReader(ctx context.Context, env Env, a Archive) (store.Caps, error)
	// Check is the preflight of all[i] (`pgoffsite check`): it probes it the way a backup
	// writes there and reports what it lacks that the archives' safety relies on. all are
	// ARCHIVE_URL's destinations, in its order. Every line names the destination.
	Check(ctx context.Context, r Checker, env Env, all []Archive, i int)
	// UploadMemory is what one upload to one destination of the kind holds in memory with
	// parts of partSize, parts of them in flight: its share of ARCHIVE_MEMORY_LIMIT. 0 for a
	// kind that streams without buffering.
	UploadMemory(partSize int64, parts int) int64
}

// Env is what the kinds need of the configuration, as it was checked.
type Env struct {
	// Getenv reads a variable as the configuration checked it: the kinds' global variables
	// (AWS_REGION, S3_STORAGE_CLASS, SFTP_KNOWN_HOSTS, ...) and those a destination names
	// (keys=NAME's pair, key=NAME).
	Getenv func(string) string
	// PartSize is ARCHIVE_PART_SIZE; Parts the parts in flight per destination that the memory
	// budget leaves (UploadMemory).
	PartSize int64
	Parts    int
	// Retention is RETENTION; TransitionDays and NoncurrentExpireDays are the lifecycle's
	// (BUCKET_*): what check compares a destination's expiry rules with.
	Retention            retention.Policy
	TransitionDays       int
	NoncurrentExpireDays int
}

// Checker takes a preflight's findings, each a format and its arguments: what is fine, what is
// risky, what fails (a failed check), and how to fix the failure or warning just reported.
type Checker interface {
	OK(format string, a ...any)
	Warn(format string, a ...any)
	Fail(format string, a ...any)
	Fix(format string, a ...any)
}

// ProbeTimeout bounds one probe of a destination: a few bytes, retried for a while.
const ProbeTimeout = 90 * time.Second

// ProbeWrite writes a small object to destination a the way the job writes an archive (Put:
// atomic, never replacing); false when that failed, said as explain says it when it can (the
// problem and its fix; explain may be nil). The uploader cannot delete it, so it stays until the bucket's lifecycle
// rules expire it (or someone removes it from a directory).
func ProbeWrite(ctx context.Context, r Checker, a Archive, st store.Store, explain func(error) (problem, fix string)) bool {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	key := fmt.Sprintf("_pgoffsite-check/%s-%s.txt", time.Now().UTC().Format("20060102T150405Z"), randomSuffix())
	body := "written by `pgoffsite check` to prove the uploader can write here; safe to delete\n"
	if err := st.Put(ctx, store.Object{Key: key, Size: int64(len(body)), ContentType: "text/plain"}, strings.NewReader(body)); err != nil {
		problem, fix := "", ""
		if explain != nil {
			problem, fix = explain(err)
		}
		if problem == "" {
			r.Fail("archive %s is not writable: %v", a, err)
		} else {
			r.Fail("archive %s is not writable: %s", a, problem)
		}
		if fix != "" {
			r.Fix("%s", fix)
		}
		return false
	}
	r.OK("archive is writable: wrote %s", st.Location(key))
	return true
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Plain is a kind whose one account both writes and reads, whose uploads stream through no
// buffer, and whose preflight is the probe write: a directory, an SFTP server. Its Parser and
// OpenStore are the kind's own.
type Plain struct {
	Parser
	OpenStore func(ctx context.Context, env Env, a Archive) (store.Store, store.Caps, error)
}

func (k Plain) Open(ctx context.Context, env Env, a Archive) (store.Store, store.Caps, error) {
	return k.OpenStore(ctx, env, a)
}

// OpenReader opens a as a backup does: the same account reads what it wrote.
func (k Plain) OpenReader(ctx context.Context, env Env, a Archive) (store.Caps, error) {
	_, c, err := k.Open(ctx, env, a)
	return c, err
}

// Check opens all[i] the way a backup opens it and writes the probe there. The markers of
// RETENTION are files beside the archives, and nothing expires archives there: it says so.
func (k Plain) Check(ctx context.Context, r Checker, env Env, all []Archive, i int) {
	a := all[i]
	if env.Retention.Set() {
		r.Warn("archive %s: RETENTION: the class is recorded in each manifest and the markers are files there, but nothing expires archives in a directory or on an SFTP server: remove old ones yourself", a)
	}
	st, caps, err := k.Open(ctx, env, a)
	if err != nil {
		r.Fail("archive %s: %v", a, err) // a refused host key says what to check
		return
	}
	if caps.Close != nil {
		defer caps.Close()
	}
	ProbeWrite(ctx, r, a, st, nil)
}

// UploadMemory: the archive is written as it streams.
func (Plain) UploadMemory(int64, int) int64 { return 0 }
