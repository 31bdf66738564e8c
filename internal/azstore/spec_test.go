package azstore

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

// The URL gives account, container, prefix and parameters; Location is what logs show.
func TestParserReadsAccountContainerPrefix(t *testing.T) {
	var r spectest.Recorder
	raw := "azblob://devstoreaccount1/backups//db//prod/?endpoint=http://127.0.0.1:10000/devstoreaccount1&keys=AZ"
	u, _ := url.Parse(raw)
	s, ok := SettingsOf(Parser{}.Parse(u, r.Field(raw, 1, 1)))
	if !ok || s.Account != "devstoreaccount1" || s.Container != "backups" || s.Prefix != "db/prod" ||
		s.Endpoint != "http://127.0.0.1:10000/devstoreaccount1" || s.Keys != "AZ" || len(r.Problems) != 0 {
		t.Fatalf("settings %+v, problems %+v", s, r.Problems)
	}
	if s.Location() != "azblob://devstoreaccount1/backups/db/prod" || s.ServiceURL() != "http://127.0.0.1:10000/devstoreaccount1" {
		t.Errorf("Location %s, ServiceURL %s", s.Location(), s.ServiceURL())
	}
	if got := s.SecretVars(); !slices.Equal(got, []string{"AZ_SAS_TOKEN", "AZ_ACCOUNT_KEY"}) {
		t.Errorf("SecretVars = %v", got)
	}
	if got := (Settings{Account: "acct", Container: "c1c"}).ServiceURL(); got != "https://acct.blob.core.windows.net" {
		t.Errorf("default ServiceURL %s", got)
	}
}

// Each mistake is named with its fix, never quoting a parameter's value.
func TestParserReportsMistakes(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"azblob:///backups", "names no storage account"},
		{"azblob://Bad_Account/backups", "is not a storage account name"},
		{"azblob://acct", "names no container"},
		{"azblob://acct/No--Good", "is not a container name"},
		{"azblob://acct/backups?sig=hunter2secret", `unknown parameter "sig"`},
		{"azblob://acct/backups?keys=hunter2secret", "keys= does not name variables"},
	} {
		var r spectest.Recorder
		u, _ := url.Parse(c.raw)
		Parser{}.Parse(u, r.Field(c.raw, 1, 1))
		if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Msg, c.want) || r.Problems[0].Fix == "" ||
			strings.Contains(r.Problems[0].Msg, "hunter2") {
			t.Errorf("%s: problems %+v, want one saying %q", c.raw, r.Problems, c.want)
		}
	}
}

// Azure's own variables without keys=, NAME_* with it: one credential must be set, a SAS token
// must look like one, and an account key beside a SAS is flagged.
func TestEnvChecker(t *testing.T) {
	for _, c := range []struct {
		name string
		keys string
		env  map[string]string
		want []string // the variables reported
	}{
		{"none", "", nil, []string{"AZURE_STORAGE_SAS_TOKEN"}},
		{"sas", "", map[string]string{"AZURE_STORAGE_SAS_TOKEN": "sv=2024&sp=c&sig=abc"}, nil},
		{"key", "", map[string]string{"AZURE_STORAGE_KEY": "a2V5"}, nil},
		{"not a sas", "", map[string]string{"AZURE_STORAGE_SAS_TOKEN": "hunter2"}, []string{"AZURE_STORAGE_SAS_TOKEN"}},
		{"both", "AZ", map[string]string{"AZ_SAS_TOKEN": "sp=c&sig=abc", "AZ_ACCOUNT_KEY": "a2V5"}, []string{"AZ_ACCOUNT_KEY"}},
		{"keys unset", "AZ", map[string]string{"AZURE_STORAGE_SAS_TOKEN": "sp=c&sig=abc"}, []string{"AZ_SAS_TOKEN"}},
	} {
		var r spectest.Recorder
		check := Parser{}.EnvChecker(func(k string) string { return c.env[k] })
		a := Settings{Account: "acct", Container: "backups", Keys: c.keys}.Archive()
		check(a, r.Field("azblob://acct/backups", 1, 2))
		check(a, r.Field("azblob://acct/backups", 2, 2)) // checked once
		var got []string
		for _, p := range r.Problems {
			got = append(got, p.Var)
			if strings.Contains(p.Msg, "hunter2") || p.Fix == "" {
				t.Errorf("%s: problem %+v", c.name, p)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: reported %v, want %v", c.name, got, c.want)
		}
	}
}

// A SAS declares what its sp= grants; an account key may do everything.
func TestSASPermissions(t *testing.T) {
	if p := sasPerms("?sv=2024&sp=c&sig=x"); p != (perms{create: true}) {
		t.Errorf("create-only: %+v", p)
	}
	if p := sasPerms("sp=rl&sig=x"); p != (perms{read: true, list: true}) {
		t.Errorf("reader: %+v", p)
	}
}

// The command that makes the uploader's SAS names the account, the container and create alone.
func TestSASCommand(t *testing.T) {
	got := SASCommand(Settings{Account: "acct", Container: "backups"}, "c")
	for _, want := range []string{"az storage container generate-sas", "--account-name acct", "--name backups", "--permissions c ", "--https-only"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", got, want)
		}
	}
}
