package azstore

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// Scheme names the kind in ARCHIVE_URL: azblob://ACCOUNT/CONTAINER/optional/prefix.
const Scheme = "azblob"

// The variables Azure's own tools (az, AzCopy) read the credentials from; a destination with
// keys=NAME reads NAME_SAS_TOKEN or NAME_ACCOUNT_KEY instead.
const (
	SASTokenVar   = "AZURE_STORAGE_SAS_TOKEN"
	AccountKeyVar = "AZURE_STORAGE_KEY"
)

// Settings are an Azure Blob destination's, as its URL gives them.
type Settings struct {
	Account   string
	Container string
	Prefix    string // without leading, trailing or doubled slashes
	// Endpoint is the account's blob service URL (endpoint=); "" is
	// https://ACCOUNT.blob.core.windows.net.
	Endpoint string
	// Keys names the variables of this destination's credentials (keys=NAME: NAME_SAS_TOKEN or
	// NAME_ACCOUNT_KEY); "" is AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_KEY.
	Keys string
}

func (s Settings) Location() string {
	loc := "azblob://" + s.Account + "/" + s.Container
	if s.Prefix != "" {
		loc += "/" + s.Prefix
	}
	return loc
}

// Identity: account and container names are lower case; the same names at another endpoint
// (an emulator, a sovereign cloud) are another copy.
func (s Settings) Identity() string {
	return s.Location() + " " + strings.TrimRight(strings.ToLower(s.Endpoint), "/")
}

func (s Settings) SecretVars() []string {
	sas, key := CredentialVars(s.Keys)
	return []string{sas, key}
}

// ServiceURL is the account's blob service URL, without a trailing slash.
func (s Settings) ServiceURL() string {
	if s.Endpoint != "" {
		return strings.TrimRight(s.Endpoint, "/")
	}
	return "https://" + s.Account + ".blob.core.windows.net"
}

// Archive is the destination s describes.
func (s Settings) Archive() spec.Archive { return spec.Archive{Scheme: Scheme, Settings: s} }

// SettingsOf are a's settings; ok is false when a is no Azure Blob destination (or one whose URL
// could not be read).
func SettingsOf(a spec.Archive) (s Settings, ok bool) {
	s, ok = a.Settings.(Settings)
	return s, ok
}

// CredentialVars are the variables a destination with keys=name reads its SAS token or account
// key from; name "" gives Azure's own.
func CredentialVars(name string) (sasToken, accountKey string) {
	if name == "" {
		return SASTokenVar, AccountKeyVar
	}
	return name + "_SAS_TOKEN", name + "_ACCOUNT_KEY"
}

// Parser reads azblob://ACCOUNT/CONTAINER/optional/prefix destinations and their parameters.
type Parser struct{}

var (
	// accountRE and containerRE are Azure's naming rules: an account is 3-24 lowercase letters
	// and digits; a container 3-63 lowercase letters, digits and single dashes, starting and
	// ending with a letter or digit.
	accountRE   = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
)

var params = []string{"endpoint", "keys"}

// GlobalVars: a destination without keys= reads Azure's own variables.
func (Parser) GlobalVars(d spec.Archive) []string {
	s, _ := SettingsOf(d)
	if s.Keys != "" {
		return nil
	}
	return []string{SASTokenVar, AccountKeyVar}
}

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return true }

func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	const form = "write azblob://ACCOUNT/CONTAINER/optional/prefix, e.g. azblob://mybackups/pgoffsite"
	s := Settings{Account: u.Host}
	container, prefix, _ := strings.Cut(strings.TrimLeft(u.Path, "/"), "/")
	s.Container, s.Prefix = container, cleanPrefix(prefix)
	switch {
	case u.Host == "":
		r.Add(r.Shown()+" names no storage account", form+" (two slashes before the account)")
	case !accountRE.MatchString(u.Host):
		r.Add(r.Quote(u.Host)+" is not a storage account name (3-24 lowercase letters and digits)",
			"use the account's name as `az storage account list --query [].name` shows it; "+form)
	}
	switch {
	case container == "":
		r.Add(r.Shown()+" names no container", form)
	case !containerRE.MatchString(container):
		r.Add(r.Quote(container)+" is not a container name (3-63 lowercase letters, digits and single dashes)",
			"use the container's name as `az storage container list --account-name "+u.Host+"` shows it")
	}
	q := r.Query(u, params, "use only endpoint=URL (the account's blob service URL) and keys=NAME "+
		"(credentials in NAME_SAS_TOKEN or NAME_ACCOUNT_KEY), e.g. azblob://account/container?keys=AZ")
	if v, ok := q["endpoint"]; ok {
		s.Endpoint = r.URL("endpoint=", v, "write endpoint=URL, the account's blob service URL, e.g. endpoint=https://"+
			u.Host+".blob.core.windows.net (Azurite: http://127.0.0.1:10000/devstoreaccount1)")
	}
	if v, ok := q["keys"]; ok {
		s.Keys = v
		if !spec.IsVarName(v) {
			r.Add("keys= does not name variables",
				"write keys=NAME with NAME in capitals, digits and underscores, e.g. keys=AZ to read AZ_SAS_TOKEN or AZ_ACCOUNT_KEY (never the credentials themselves)")
			s.Keys = ""
		}
	}
	return s.Archive()
}

// cleanPrefix drops leading, trailing and doubled slashes: "/a//b/" is "a/b".
func cleanPrefix(p string) string {
	return strings.Join(strings.FieldsFunc(p, func(r rune) bool { return r == '/' }), "/")
}

// EnvChecker checks that each destination has one credential: a SAS token or an account key.
func (Parser) EnvChecker(getenv func(string) string) func(spec.Archive, spec.Field) {
	checked := map[string]bool{}
	return func(d spec.Archive, r spec.Field) {
		s, ok := SettingsOf(d)
		if !ok || checked[s.Keys] {
			return
		}
		checked[s.Keys] = true
		sasVar, keyVar := CredentialVars(s.Keys)
		sas, key := strings.TrimSpace(getenv(sasVar)), strings.TrimSpace(getenv(keyVar))
		switch {
		case sas == "" && key == "":
			r.AddVar(sasVar, "not set, nor "+keyVar+", and ARCHIVE_URL's "+r.Name()+" is an Azure Blob container",
				"make a SAS that may only create blobs with `"+SASCommand(s, "c")+"` and heroku config:set "+sasVar+"=...")
		case sas != "" && key != "":
			r.AddVar(keyVar, "set beside "+sasVar+": pgoffsite would use the SAS token and the account key would sit unused in the config",
				"heroku config:unset "+keyVar+" (an account key may do anything to the account; the SAS is the uploader's)")
		case sas != "":
			if _, err := url.ParseQuery(strings.TrimPrefix(sas, "?")); err != nil || !strings.Contains(sas, "sig=") {
				r.AddVar(sasVar, "does not hold a SAS token (sv=...&sp=...&sig=...)",
					"paste the token `az storage container generate-sas` prints, without quotes")
			}
		}
	}
}

// SASCommand is the az command that makes a SAS for s's container with perms (Azure's letters:
// "c" for the uploader, "rl" for the reader), valid for a year, over HTTPS only. `az` signs it
// with the account key it is given (--account-key, or AZURE_STORAGE_KEY on that machine).
func SASCommand(s Settings, perms string) string {
	return "az storage container generate-sas --account-name " + s.Account + " --name " + s.Container +
		" --permissions " + perms + " --expiry " + sasExpiry + " --https-only --auth-mode key -o tsv"
}
