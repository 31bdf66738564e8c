package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// ProbeTimeout bounds one probe of a destination: a few bytes, retried for a while.
const ProbeTimeout = 90 * time.Second

// ProbeWrite writes a small object to destination a the way the job writes an archive (Put:
// atomic, never replacing); false when that failed. The uploader cannot delete it, so it stays
// until the bucket's lifecycle rules expire it (or someone removes it from a directory).
func ProbeWrite(ctx context.Context, r Reporter, a spec.Archive, st store.Store) bool {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	key := fmt.Sprintf("_pgoffsite-check/%s-%s.txt", time.Now().UTC().Format("20060102T150405Z"), randomSuffix())
	body := "written by `pgoffsite check` to prove the uploader can write here; safe to delete\n"
	if err := st.Put(ctx, store.Object{Key: key, Size: int64(len(body)), ContentType: "text/plain"}, strings.NewReader(body)); err != nil {
		if e, ok := s3err.As(err); ok {
			r.Fail("archive %s is not writable: %s", a, e.Problem())
			r.Fix("%s", e.Fix())
		} else {
			r.Fail("archive %s is not writable: %v", a, err)
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
