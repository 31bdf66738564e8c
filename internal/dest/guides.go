package dest

import (
	"io"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/azstore"
	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/gcsstore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// guide is what the bucket commands print for a kind whose access and retention are set with
// its provider's own tools, pgoffsite holding no administrator's credentials there: the
// credentials to make (policy) and the lifecycle and retention lock to apply (setup-bucket).
type guide struct {
	policy func(a spec.Archive, reader bool) string
	setup  func(w io.Writer, a spec.Archive, o bucket.Options) error
}

// guides are the kinds the bucket commands print steps for, beside S3's, whose bucket they
// change themselves.
var guides = map[string]guide{
	azstore.Scheme: {policy: azstore.PolicyText, setup: func(w io.Writer, a spec.Archive, o bucket.Options) error {
		s, _ := azstore.SettingsOf(a)
		return bucket.AzureSetup(w, bucket.AzureTarget{Location: a.String(), Account: s.Account, Container: s.Container, Prefix: s.Prefix}, o)
	}},
	gcsstore.Scheme: {policy: gcsstore.PolicyText, setup: func(w io.Writer, a spec.Archive, o bucket.Options) error {
		s, _ := gcsstore.SettingsOf(a)
		return bucket.GCSSetup(w, bucket.GCSTarget{Location: a.String(), Bucket: s.Bucket, Prefix: s.Prefix}, o)
	}},
}

// Guide is an Azure Blob or Google Cloud Storage destination a bucket command prints the steps
// for.
type Guide struct {
	Archive spec.Archive
	g       guide
}

// Policy is the text `pgoffsite policy` prints: how to make the uploader's credentials, or with
// reader the reader's.
func (g Guide) Policy(reader bool) string { return g.g.policy(g.Archive, reader) }

// Setup prints what `pgoffsite setup-bucket` would apply: the lifecycle document of o and the
// retention lock, as the provider's commands.
func (g Guide) Setup(w io.Writer, o bucket.Options) error { return g.g.setup(w, g.Archive, o) }

// PickGuide is the destination a bucket command prints steps for instead of working on an S3
// bucket: the Azure or Google one choice names or, with no choice and no S3 destination, the
// only one. ok is false when the command is S3's (PickBucket): a choice naming an S3 bucket, or
// no choice beside an S3 destination, as before Azure and Google were destinations.
func PickGuide(all []spec.Archive, choice string) (g Guide, ok bool, err error) {
	guided := func(a spec.Archive) bool { _, ok := guides[a.Scheme]; return ok }
	hasS3, n := false, 0
	for _, a := range all {
		_, s3 := s3store.SettingsOf(a)
		hasS3 = hasS3 || s3
		if guided(a) {
			n++
		}
	}
	if n == 0 || (strings.TrimSpace(choice) == "" && hasS3) {
		return Guide{}, false, nil
	}
	a, err := pick(all, choice, among{kinds: "S3, Azure Blob and Google Cloud Storage destinations", ones: "bucket destinations",
		eligible: func(a spec.Archive) bool {
			_, s3 := s3store.SettingsOf(a)
			return s3 || guided(a)
		}})
	if err != nil {
		return Guide{}, false, err
	}
	if !guided(a) {
		return Guide{}, false, nil
	}
	return Guide{Archive: a, g: guides[a.Scheme]}, true, nil
}
