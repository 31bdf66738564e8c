package gcsstore

import (
	"errors"
	"net/http"

	"google.golang.org/api/googleapi"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// explain says what Google's refusal of a write means and what fixes it; "" when it is none
// of those.
func explain(a spec.Archive, err error) (problem, fix string) {
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		return "", ""
	}
	s, _ := SettingsOf(a)
	switch gerr.Code {
	case http.StatusUnauthorized:
		return "Google refused the credentials (401)",
			"set " + credentialsVar(a) + " to a current key of the uploader's service account (`gcloud iam service-accounts keys create key.json --iam-account=SA_EMAIL`)"
	case http.StatusForbidden:
		return "the service account may not create objects in gs://" + s.Bucket + " (403)",
			"grant it roles/storage.objectCreator on the bucket: gcloud storage buckets add-iam-policy-binding gs://" + s.Bucket + " --member=serviceAccount:SA_EMAIL --role=roles/storage.objectCreator"
	case http.StatusNotFound:
		return "bucket gs://" + s.Bucket + " does not exist (404)",
			"create it (`gcloud storage buckets create gs://" + s.Bucket + " --location=LOCATION --uniform-bucket-level-access`) or fix ARCHIVE_URL"
	}
	return "", ""
}
