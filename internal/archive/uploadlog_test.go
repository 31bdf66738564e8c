package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// refusingStore reads the whole archive and then refuses it, as S3 answers a PutObject that
// the keys may not do once the body is sent.
type refusingStore struct{ err error }

func (f refusingStore) Put(_ context.Context, _ store.Object, r io.Reader) error {
	io.Copy(io.Discard, r)
	return f.err
}

func (f refusingStore) Location(key string) string { return "s3://refused/" + key }

// No "upload finished" line comes before a failure: a refused upload logs none, and one stored
// at some destinations only says where, as a warning.
func TestNoFinishedLineBeforeAFailure(t *testing.T) {
	body := realDump(t)
	denied := errors.New("s3://refused: these keys may not write the archives (AccessDenied on PutObject)")
	for _, c := range []struct {
		name    string
		refused []int // the destinations that refuse
		want    string
	}{
		{"every copy refused", []int{0, 1, 2}, ""},
		{"one of three refused", []int{1}, "upload stored at 2 of 3 destinations; the others failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, _, _ := threeDestinations(t, body)
			var log bytes.Buffer
			j.Log = zerolog.New(&log)
			for _, i := range c.refused {
				j.Destinations[i].Store = refusingStore{err: denied}
			}
			res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
			if !errors.Is(res.Err, denied) {
				t.Fatalf("err = %v, want the refusal", res.Err)
			}
			if strings.Contains(log.String(), "upload finished") {
				t.Errorf("the log says the upload finished before the target failed:\n%s", log.String())
			}
			if c.want != "" && (!strings.Contains(log.String(), c.want) || !strings.Contains(log.String(), `"copies_failed":["s3://two"]`)) {
				t.Errorf("the log lacks %q naming the failed copy:\n%s", c.want, log.String())
			}
		})
	}
}
