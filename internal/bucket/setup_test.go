package bucket

import (
	"context"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestPublicAccessBlockRequestAndNotImplementedWarning(t *testing.T) {
	for _, store := range []struct {
		name        string
		implemented bool
	}{{"store with Block Public Access", true}, {"store without it", false}} {
		t.Run(store.name, func(t *testing.T) {
			f, client := newFakeS3(t, "eu-central-1", true)
			f.docs["versioning"] = []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)
			s := NewSetup(client, Options{Bucket: "archive-bucket", Prefix: "pg", Region: "eu-central-1"})
			p := mustPlan(t, s)
			if !strings.Contains(kinds(p), KindPublicAccess) {
				t.Fatalf("plan %q has no %s action", kinds(p), KindPublicAccess)
			}
			// The store answers reads as Amazon S3 does for a bucket without
			// the setting, and writes with 501 when it lacks the feature.
			f.notImpl["publicAccessBlock"] = !store.implemented
			warnings, err := s.Apply(context.Background(), p)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}

			puts := f.sent(http.MethodPut, "publicAccessBlock")
			if len(puts) != 1 {
				t.Fatalf("sent %d PutPublicAccessBlock requests, want 1", len(puts))
			}
			var got struct {
				XMLName                                                                     xml.Name `xml:"PublicAccessBlockConfiguration"`
				BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets string
			}
			if err := xml.Unmarshal([]byte(puts[0].Body), &got); err != nil {
				t.Fatalf("PutPublicAccessBlock body %q: %v", puts[0].Body, err)
			}
			for name, v := range map[string]string{"BlockPublicAcls": got.BlockPublicAcls, "IgnorePublicAcls": got.IgnorePublicAcls,
				"BlockPublicPolicy": got.BlockPublicPolicy, "RestrictPublicBuckets": got.RestrictPublicBuckets} {
				if v != "true" {
					t.Errorf("PutPublicAccessBlock %s = %q, want true (body %s)", name, v, puts[0].Body)
				}
			}

			hasWarning := slices.Contains(warnings, warnNoPublicAccessBlock)
			if hasWarning == store.implemented {
				t.Errorf("Apply warnings %q: public access warning present = %v, want %v", warnings, hasWarning, !store.implemented)
			}
			again := mustPlan(t, s)
			if len(again.Actions) != 0 {
				t.Errorf("plan after apply: %s", again)
			}
			if slices.Contains(again.Warnings, warnNoPublicAccessBlock) == store.implemented {
				t.Errorf("plan after apply warnings %q", again.Warnings)
			}
		})
	}
}

func TestPlanWritesNothing(t *testing.T) {
	f, client := newFakeS3(t, "us-east-1", true)
	p := mustPlan(t, NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1", ObjectLockDays: 0}))
	if want := "versioning,encryption,public-access-block,bucket-policy,lifecycle"; kinds(p) != want {
		t.Errorf("plan on a bare bucket = %s, want %s", kinds(p), want)
	}
	if n := f.writes(); n != 0 {
		t.Errorf("Plan sent %d write requests", n)
	}
}

func TestCreateBucket(t *testing.T) {
	tests := []struct {
		region, lockHeader string
		lockDays           int
		wantConstraint     bool
	}{
		{"us-east-1", "", 0, false}, // the default region must not be sent as a constraint
		{"eu-central-1", "", 0, true},
		{"eu-central-1", "true", 7, true},
	}
	for _, tc := range tests {
		t.Run(tc.region+tc.lockHeader, func(t *testing.T) {
			f, client := newFakeS3(t, tc.region, false)
			s := NewSetup(client, Options{Bucket: "archive-bucket", Region: tc.region, ObjectLockDays: tc.lockDays})
			p := mustPlan(t, s)
			if len(p.Actions) == 0 || p.Actions[0].Kind != KindCreateBucket {
				t.Fatalf("plan for a missing bucket = %s", kinds(p))
			}
			if _, err := s.Apply(context.Background(), p); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			creates := f.sent(http.MethodPut, "")
			if len(creates) != 1 {
				t.Fatalf("%d CreateBucket requests", len(creates))
			}
			c := creates[0]
			if got := strings.Contains(c.Body, "<LocationConstraint>"+tc.region+"</LocationConstraint>"); got != tc.wantConstraint {
				t.Errorf("CreateBucket body %q: location constraint present = %v, want %v", c.Body, got, tc.wantConstraint)
			}
			if got := c.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"); got != tc.lockHeader {
				t.Errorf("object lock header = %q, want %q", got, tc.lockHeader)
			}
			if tc.lockDays > 0 && len(f.sent(http.MethodPut, "object-lock")) != 1 {
				t.Errorf("no default retention set")
			}
		})
	}
}

func TestBucketErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("other region", func(t *testing.T) {
		_, client := newFakeS3(t, "eu-west-1", true)
		_, err := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"}).Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "region eu-west-1, not us-east-1") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("redirect to other region", func(t *testing.T) {
		f, client := newFakeS3(t, "ap-south-1", true)
		f.head = http.StatusMovedPermanently
		_, err := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"}).Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "region ap-south-1") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("someone else's", func(t *testing.T) {
		f, client := newFakeS3(t, "us-east-1", true)
		f.head = http.StatusForbidden
		_, err := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"}).Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "another account") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("name taken", func(t *testing.T) {
		f, client := newFakeS3(t, "us-east-1", false)
		f.create = "BucketAlreadyExists"
		s := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"})
		_, err := s.Apply(ctx, mustPlan(t, s))
		if err == nil || !strings.Contains(err.Error(), "taken by another account") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("already ours", func(t *testing.T) {
		f, client := newFakeS3(t, "us-east-1", false)
		s := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"})
		p := mustPlan(t, s)
		f.create = "BucketAlreadyOwnedByYou"
		f.exists = true
		if _, err := s.Apply(ctx, p); err != nil {
			t.Errorf("Apply: %v", err)
		}
	})
	t.Run("object lock on a bucket without it", func(t *testing.T) {
		_, client := newFakeS3(t, "us-east-1", true)
		_, err := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1", ObjectLockDays: 30}).Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "only when it creates a bucket") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		_, client := newFakeS3(t, "us-east-1", true)
		_, err := NewSetup(client, Options{Bucket: "Bad_Name", Prefix: "a*", SSE: "rot13", TransitionDays: 60, ExpireDays: 30,
			ObjectLockMode: "FOREVER"}).Plan(ctx)
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"Bad_Name", `prefix "a*"`, "region is empty", `"rot13"`, "expire days 30", `"FOREVER"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
}

// setup-bucket refuses exactly the names ARCHIVE_URL refuses: S3's rules, checked by s3name.
func TestBucketNameRules(t *testing.T) {
	for name, want := range map[string]string{
		"archive-bucket": "", "my.bucket-01": "",
		"192.168.5.4": "IP address", "xn--acme": "reserved", "acme-s3alias": "reserved", "acme..db": "two dots",
		"Bad_Name": "lowercase", "ab": "3 to 63", "acme.s3.eu-west-1.amazonaws.com": "endpoint",
	} {
		err := Options{Bucket: name, Region: "us-east-1"}.withDefaults().validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want one about %q", name, err, want)
		}
	}
}

func TestEncryptionKeepsStrongerDefault(t *testing.T) {
	kms := []byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm>` +
		`<KMSMasterKeyID>arn:aws:kms:us-east-1:111122223333:key/k1</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`)
	tests := []struct {
		name       string
		sse, key   string
		wantChange bool
	}{
		{"unset keeps KMS", "", "", false},
		{"same key by id", SSEKMS, "k1", false},
		{"other key", SSEKMS, "k2", true},
		{"explicit SSE-S3", SSES3, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, client := newFakeS3(t, "us-east-1", true)
			f.docs["encryption"] = kms
			p := mustPlan(t, NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1", SSE: tc.sse, KMSKeyID: tc.key}))
			if got := strings.Contains(kinds(p), KindEncryption); got != tc.wantChange {
				t.Errorf("encryption change planned = %v, want %v (%s)", got, tc.wantChange, p)
			}
		})
	}
}

func TestApplyWarnsWhenStoreDropsSetting(t *testing.T) {
	f, client := newFakeS3(t, "us-east-1", true)
	s := NewSetup(client, Options{Bucket: "archive-bucket", Region: "us-east-1"})
	p := mustPlan(t, s)
	if p.Actions[0].Kind != KindVersioning {
		t.Fatalf("first action %s", p.Actions[0].Kind)
	}
	// A store that accepts versioning but keeps answering "not enabled".
	orig := p.Actions[0].apply
	p.Actions[0].apply = func(ctx context.Context) (string, error) {
		w, err := orig(ctx)
		f.mu.Lock()
		delete(f.docs, "versioning")
		f.mu.Unlock()
		return w, err
	}
	warnings, err := s.Apply(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range warnings {
		found = found || strings.HasPrefix(w, KindVersioning+" reads back differently")
	}
	if !found {
		t.Errorf("no read-back warning for versioning in %q", warnings)
	}
}
