package filestore

import (
	"net/url"
	"path"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// Parser reads file:///absolute/dir destinations: a directory, which reads no other variable.
type Parser struct{}

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return false }

func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		r.Add(r.Shown()+" is not an absolute directory", "write file:///absolute/dir (three slashes)")
		return spec.Archive{Scheme: "file"}
	}
	dir := path.Clean(u.Path)
	if dir == "/" {
		// Archives would be written into the root of the filesystem, beside /etc and /usr.
		r.Add(r.Shown()+" is the root directory", "name a directory for the archives, e.g. file:///mnt/archive")
		return spec.Archive{Scheme: "file"}
	}
	return spec.Archive{Scheme: "file", Dir: dir}
}

func (Parser) Identity(a spec.Archive) string { return a.String() }

func (Parser) EnvChecker(func(string) string) func(spec.Archive, spec.Field) {
	return func(spec.Archive, spec.Field) {}
}

func (Parser) SecretVars(spec.Archive) []string { return nil }
