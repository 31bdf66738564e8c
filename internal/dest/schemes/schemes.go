// Package schemes maps each scheme of ARCHIVE_URL to the parser of its kind, for the
// configuration check. Adding a kind of destination is one line here and one in dest.
package schemes

import (
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
)

var parsers = map[string]spec.Parser{
	"file": filestore.Parser{},
	"s3":   s3store.Parser{},
	"sftp": sftpstore.Parser{},
}

// Parser is the parser of scheme's kind; ok is false for a scheme no kind reads.
func Parser(scheme string) (p spec.Parser, ok bool) {
	p, ok = parsers[scheme]
	return p, ok
}
