package gcsstore

import (
	"fmt"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// PolicyText is what `pgoffsite policy` prints for a Google Cloud Storage destination: the
// gcloud commands that make the uploader's service account (roles/storage.objectCreator: create
// only) or, with reader, the reader's (roles/storage.objectViewer, and the verification records),
// each bound to the bucket alone, under the prefix when there is one.
func PolicyText(a spec.Archive, reader bool) string {
	s, _ := SettingsOf(a)
	b := &strings.Builder{}
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	bucket := "gs://" + s.Bucket
	objects := "projects/_/buckets/" + s.Bucket + "/objects/"
	if s.Prefix != "" {
		objects += s.Prefix + "/"
	}
	// A condition needs the bucket's uniform bucket-level access.
	cond := func(title, expr string) string {
		return fmt.Sprintf(" --condition='expression=%s,title=%s'", expr, title)
	}
	under := ""
	if s.Prefix != "" {
		under = cond("pgoffsite-prefix", `resource.name.startsWith("`+objects+`")`)
	}
	sa, name := "pgoffsite-uploader", "uploader"
	if reader {
		sa, name = "pgoffsite-reader", "reader"
	}
	email := sa + "@PROJECT_ID.iam.gserviceaccount.com"
	if reader {
		p("# The reader of %s: roles/storage.objectViewer reads and lists the archives (verify, status, list,", a)
		p("# restore) and cannot create, replace or delete one; roles/storage.objectUser on the names ending %s", catalog.VerifiedSuffix)
		p("# alone lets verify keep its records, which status shows. Run as an admin of the bucket (gcloud auth login).")
	} else {
		p("# The uploader of %s: roles/storage.objectCreator, create only. It cannot read, list or delete an object,", a)
		p("# and cannot overwrite one: pgoffsite writes with the does-not-exist precondition, and replacing an object needs")
		p("# storage.objects.delete, which the role lacks. A stolen key cannot destroy the archives. Run as an admin of the")
		p("# bucket (gcloud auth login).")
	}
	p("gcloud iam service-accounts create %s --display-name='pgoffsite %s'", sa, name)
	if s.Prefix != "" || reader {
		p("# The bindings below have IAM conditions, which need uniform bucket-level access on the bucket.")
		p("gcloud storage buckets update %s --uniform-bucket-level-access", bucket)
	}
	if reader {
		p("gcloud storage buckets add-iam-policy-binding %s --member=serviceAccount:%s --role=roles/storage.objectViewer%s", bucket, email, under)
		p("gcloud storage buckets add-iam-policy-binding %s --member=serviceAccount:%s --role=roles/storage.objectUser%s", bucket, email,
			cond("pgoffsite-records", `resource.name.startsWith("`+objects+`") && resource.name.endsWith("`+catalog.VerifiedSuffix+`")`))
	} else {
		p("gcloud storage buckets add-iam-policy-binding %s --member=serviceAccount:%s --role=roles/storage.objectCreator%s", bucket, email, under)
	}
	p("gcloud iam service-accounts keys create %s-key.json --iam-account=%s", name, email)
	v := credentialsVar(a)
	if reader {
		p("# Where verify, status or restore run: %s=\"$(cat %s-key.json)\" (or %s=%s-key.json).", v, name, ApplicationCredentialsVar, name)
	} else {
		p("heroku config:set %s=\"$(cat %s-key.json)\" -a APP && rm %s-key.json", v, name, name)
	}
	p("# A key does not expire: rotate it (keys create, then keys delete the old one) when someone who saw it leaves.")
	return b.String()
}
