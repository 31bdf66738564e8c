package cli

import (
	"regexp"
	"strings"
	"testing"
)

// `pgoffsite policy` for an Azure Blob or Google Cloud Storage destination prints how to make the
// uploader's create-only credentials, or with --reader the reader's, from the kind's own text.
func TestPolicyForAzureAndGoogle(t *testing.T) {
	for _, tc := range []struct {
		url          string
		reader       bool
		want, absent []string
	}{
		{"azblob://acct/backups/pg", false,
			[]string{"az storage container generate-sas --account-name acct --name backups --permissions c ", "--https-only", "heroku config:set AZURE_STORAGE_SAS_TOKEN=", "cannot be revoked by itself", "az storage account keys renew"},
			[]string{"--permissions rl"}},
		{"azblob://acct/backups/pg?keys=AZ", true,
			[]string{"--permissions rl ", "AZ_SAS_TOKEN=<the token>"},
			[]string{"--permissions c "}},
		{"gs://acme-archives/pg", false,
			[]string{"--role=roles/storage.objectCreator --condition='expression=resource.name.startsWith(\"projects/_/buckets/acme-archives/objects/pg/\")", "GOOGLE_CREDENTIALS=\"$(cat uploader-key.json)\"", "does-not-exist precondition"},
			[]string{"objectViewer", "objectUser"}},
		{"gs://acme-archives", true,
			[]string{"--role=roles/storage.objectViewer\n", "--role=roles/storage.objectUser --condition='expression=resource.name.startsWith(\"projects/_/buckets/acme-archives/objects/\") && resource.name.endsWith(\".verified.json\")"},
			[]string{"objectCreator"}},
	} {
		args := []string{"policy"}
		if tc.reader {
			args = append(args, "--reader")
		}
		code, out, _ := runEnv(t, map[string]string{"ARCHIVE_URL": tc.url}, args...)
		if code != ExitOK {
			t.Fatalf("%s: exit %d", tc.url, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s (reader %v): the policy lacks %q:\n%s", tc.url, tc.reader, w, out)
			}
		}
		for _, a := range tc.absent {
			if strings.Contains(out, a) {
				t.Errorf("%s (reader %v): the policy has %q", tc.url, tc.reader, a)
			}
		}
	}
}

// Beside an S3 destination, policy and setup-bucket stay S3's unless --destination names the
// Azure or Google one.
func TestPolicyPicksTheDestination(t *testing.T) {
	env := map[string]string{"ARCHIVE_URL": "s3://acme-archives/pg azblob://acct/backups"}
	if code, out, _ := runEnv(t, env, "policy"); code != ExitOK || !strings.Contains(out, `"Version": "2012-10-17"`) {
		t.Errorf("no choice beside S3: exit %d\n%s", code, out)
	}
	if code, out, _ := runEnv(t, env, "policy", "--destination", "2"); code != ExitOK || !strings.Contains(out, "--permissions c ") {
		t.Errorf("--destination 2: exit %d\n%s", code, out)
	}
	if code, out, _ := runEnv(t, env, "policy", "--destination", "azblob://acct/backups"); code != ExitOK || !strings.Contains(out, "--permissions c ") {
		t.Errorf("--destination azblob://acct/backups: exit %d\n%s", code, out)
	}
	two := map[string]string{"ARCHIVE_URL": "gs://acme-archives azblob://acct/backups"}
	if code, _, errOut := runEnv(t, two, "policy"); code != ExitUsage || !strings.Contains(errOut, "--destination 2") {
		t.Errorf("two clouds and no choice: exit %d\n%s", code, errOut)
	}
}

// setup-bucket for azblob:// prints the lifecycle policy of RETENTION and the immutability steps;
// it changes nothing, so it needs no administrator's credentials of pgoffsite.
func TestSetupBucketPrintsAzureSteps(t *testing.T) {
	env := map[string]string{
		"ARCHIVE_URL":             "azblob://acct/backups/pg",
		"AZURE_STORAGE_SAS_TOKEN": "sv=2024-08-04&sp=c&sr=c&sig=c2VjcmV0",
		"RETENTION":               "daily=7d monthly=12m",
		"HEROKU_API_KEY":          apiKey,
		"BACKUP_TARGETS":          "shop",
	}
	code, out, errOut := runEnv(t, env, "setup-bucket")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	doc := regexp.MustCompile(`(?s)<<'EOF'\n(.*?)\nEOF`).FindStringSubmatch(out)
	if doc == nil || strings.Count(doc[1], `"blobIndexMatch"`) != 2 || !strings.Contains(doc[1], `"value": "monthly"`) {
		t.Errorf("the printed policy:\n%s", out)
	}
	for _, want := range []string{"az storage account management-policy create --account-name acct", "immutability-policy create", "--period 7\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the script lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "c2VjcmV0") {
		t.Error("the output shows the SAS")
	}
}
