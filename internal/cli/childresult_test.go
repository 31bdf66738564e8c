package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// A child's result line is scrubbed like its log: no key, signed URL or database password in it,
// and it reads back as the target's result.
func TestFanoutChildResultLineHasNoSecrets(t *testing.T) {
	r := scrub.New("hrku-0a1b2c3d4e5f-apikey")
	var out bytes.Buffer
	err := errors.New("heroku: 401 for hrku-0a1b2c3d4e5f-apikey fetching https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123 into postgres://u:dbpassw0rd@h/d")
	childResult(&out, r, archive.Result{Target: archive.Target{App: "shop", Database: "DATABASE_URL"}, Err: err,
		Copies: []archive.Copy{{Destination: "s3://b", Err: err}}})
	line := out.String()
	for _, leak := range []string{"hrku-0a1b2c3d4e5f", "abcdef0123", "dbpassw0rd"} {
		if strings.Contains(line, leak) {
			t.Errorf("the result line holds %q:\n%s", leak, line)
		}
	}
	if !strings.HasPrefix(line, `{"pgoffsite_result":1,"app":"shop","database":"DATABASE_URL","status":"failed"`) || strings.Count(line, "\n") != 1 {
		t.Errorf("not a result line:\n%s", line)
	}
}
