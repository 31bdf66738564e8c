package config

import (
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// The set of secret values is one rule, followed by config's own messages (before the first
// problem is added) and by every command's redactor: SecretVars names the variables, Secrets
// turns their values into what is scrubbed.

// SecretVars names the variables whose values are secret and must be scrubbed from all output:
// the API and AWS keys, AGE_IDENTITY, BUNDLE_SIGNING_KEY, SFTP_PRIVATE_KEY, and the variables
// each destination names (keys=NAME's pair, an SFTP key=NAME).
func (c Config) SecretVars() []string { return secretVars(c.Archives) }

func secretVars(as []spec.Archive) []string {
	names := []string{"HEROKU_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", signingKeyVar, identityVar, sftpKeyVar}
	for _, a := range as {
		names = append(names, a.SecretVars()...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Secrets are the values of the secret variables as getenv reads them, and an age identity
// pasted into ARCHIVE_RECIPIENTS by mistake.
func Secrets(vars []string, getenv func(string) string) []string {
	var s []string
	for _, name := range vars {
		s = append(s, ValueSecrets(getenv(name))...)
	}
	for _, line := range strings.Split(getenv(recipientsVar), "\n") {
		if strings.Contains(strings.ToUpper(line), "AGE-SECRET-KEY-") {
			s = append(s, ValueSecrets(line)...)
		}
	}
	return s
}

// Secrets are the configured values that must never be written anywhere: the secret variables'
// values, and each env:VAR target's database URL with its password alone.
func (c Config) Secrets() []string {
	s := Secrets(c.SecretVars(), os.Getenv)
	for _, t := range c.Targets {
		if !t.Env || t.URL == "" {
			continue
		}
		s = append(s, t.URL)
		if p, ok := urlPassword(t.URL); ok {
			s = append(s, p)
		}
	}
	return s
}

// urlPassword is the password of a database URL, to be scrubbed wherever it appears, when it is
// one that hides something: a password that is also the URL's scheme, user, host or database
// name (postgres://postgres:postgres@localhost/postgres, a local default) is shown by the URL
// anyway, and scrubbing it would mask that word in every message — "postgres://" in a fix among
// them. The URL itself is scrubbed whole, and its password by its place in any URL.
func urlPassword(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", false
	}
	p, ok := u.User.Password()
	if !ok || p == "" {
		return "", false
	}
	rest := *u
	rest.User = url.User(u.User.Username())
	return p, !strings.Contains(rest.String(), p)
}

// ValueSecrets is a secret value whole and line by line (each as written, trimmed and in lower
// case): a private key's lines are each secret, and a partial paste must not leak either.
// Comments and the BEGIN/END lines of a PEM block are not secret.
func ValueSecrets(text string) []string {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	s := []string{text}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-----") {
			continue
		}
		s = append(s, line, strings.ToLower(line))
	}
	return s
}

// envSecrets registers, before anything is checked, the values of the secret variables, those
// that ARCHIVE_URL's destinations name included, so that no message can quote them. The
// destinations are read here without reporting anything: their problems are reported once,
// by archives, with these secrets known.
func (ck *checker) envSecrets(e env) {
	quiet := &checker{}
	ck.secrets = append(ck.secrets, Secrets(secretVars(quiet.archives(e.ArchiveURL)), e.lookup)...)
}
