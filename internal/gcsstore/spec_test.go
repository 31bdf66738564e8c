package gcsstore

import (
	"net/url"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

func parse(t *testing.T, raw string) (Settings, []spectest.Problem) {
	t.Helper()
	var r spectest.Recorder
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := Parser{}.Parse(u, r.Field(raw, 1, 1))
	if a.Scheme != Scheme {
		t.Errorf("scheme %q", a.Scheme)
	}
	s, _ := SettingsOf(a)
	return s, r.Problems
}

func TestParse(t *testing.T) {
	s, problems := parse(t, "gs://acme-pg/app/pg/?keys=GCS&endpoint=http://127.0.0.1:4443/")
	if len(problems) != 0 || s != (Settings{Bucket: "acme-pg", Prefix: "app/pg", Endpoint: "http://127.0.0.1:4443", CredentialsVar: "GCS_CREDENTIALS"}) {
		t.Errorf("%+v %+v", s, problems)
	}
	if got := s.Archive().String(); got != "gs://acme-pg/app/pg" {
		t.Errorf("Location %q", got)
	}
	if got := s.SecretVars(); len(got) != 1 || got[0] != "GCS_CREDENTIALS" {
		t.Errorf("SecretVars %v", got)
	}
	if s, _ := parse(t, "gs://acme-pg"); s.CredentialsVar != DefaultCredentialsVar || s.Prefix != "" || s.Location() != "gs://acme-pg" {
		t.Errorf("%+v", s)
	}
	for raw, want := range map[string]string{
		"gs:///pg":                 "names no bucket",
		"gs://Acme_PG-/pg":         "names a bucket Google Cloud Storage cannot have",
		"gs://acme/a//b":           "has an empty path segment",
		"gs://acme?keys=gcs-key":   "keys= does not name a variable prefix",
		"gs://acme?secret=hunter2": `unknown parameter "secret"`,
	} {
		_, problems := parse(t, raw)
		if len(problems) != 1 || !strings.Contains(problems[0].Msg, want) || problems[0].Var != spec.Var ||
			strings.Contains(problems[0].Msg+problems[0].Fix, "hunter2") {
			t.Errorf("%s: %+v, want one problem saying %q", raw, problems, want)
		}
	}
}

// The key's variable is checked once, never quoted; Google's own fallbacks stand for the
// default variable only.
func TestEnvChecker(t *testing.T) {
	const secret = "-----BEGIN PRIVATE KEY-----\\nMIIsecret\\n-----END PRIVATE KEY-----\\n"
	good := `{"type":"service_account","client_email":"up@p.iam.gserviceaccount.com","private_key":"` + secret + `"}`
	check := func(env map[string]string, as ...Settings) []spectest.Problem {
		var r spectest.Recorder
		c := Parser{}.EnvChecker(func(k string) string { return env[k] })
		for i, s := range as {
			c(s.Archive(), r.Field(s.Location(), i+1, len(as)))
		}
		return r.Problems
	}
	def := Settings{Bucket: "a", CredentialsVar: DefaultCredentialsVar}
	named := Settings{Bucket: "b", CredentialsVar: "GCS_CREDENTIALS"}
	if p := check(map[string]string{"GOOGLE_CREDENTIALS": good, "GCS_CREDENTIALS": good}, def, def, named); len(p) != 0 {
		t.Errorf("good keys: %+v", p)
	}
	if p := check(map[string]string{ApplicationCredentialsVar: "/etc/key.json"}, def); len(p) != 0 {
		t.Errorf("GOOGLE_APPLICATION_CREDENTIALS: %+v", p)
	}
	if p := check(map[string]string{EmulatorHostVar: "127.0.0.1:4443"}, def); len(p) != 0 {
		t.Errorf("STORAGE_EMULATOR_HOST: %+v", p)
	}
	p := check(map[string]string{ApplicationCredentialsVar: "/etc/key.json"}, def, named, named)
	if len(p) != 1 || p[0].Var != "GCS_CREDENTIALS" || !strings.Contains(p[0].Msg, "keys=GCS") || !strings.Contains(p[0].Fix, "gcloud iam service-accounts keys create") {
		t.Errorf("unset named key: %+v", p)
	}
	p = check(map[string]string{"GOOGLE_CREDENTIALS": `{"type":"authorized_user","private_key":"` + secret + `"}`}, def)
	if len(p) != 1 || p[0].Var != DefaultCredentialsVar || !strings.Contains(p[0].Msg, "does not hold a service account key") || strings.Contains(p[0].Msg+p[0].Fix, "MIIsecret") {
		t.Errorf("user credentials: %+v", p)
	}
	if p := check(map[string]string{"GOOGLE_CREDENTIALS": "MIIsecret"}, def); len(p) != 1 || strings.Contains(p[0].Msg+p[0].Fix, "MIIsecret") {
		t.Errorf("not JSON: %+v", p)
	}
}
