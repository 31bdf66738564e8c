package config

import (
	"os"

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// dynoVar is set by Heroku in every dyno (web.1, run.4021, scheduler.7): its presence is what
// tells pgoffsite it runs on a dyno, whose disk does not outlive it.
const dynoVar = "DYNO"

// localDisk refuses file:// destinations on a dyno: its filesystem is ephemeral, wiped when the
// dyno exits (a Scheduler run's dyno exits when the run ends), so every archive written there is
// lost, while the run would report it stored. as are archives' result, one per field of raw.
func (ck *checker) localDisk(raw string, as []spec.Archive) {
	dyno := os.Getenv(dynoVar)
	if dyno == "" {
		return
	}
	fields := envlist.Split(raw)
	for i, a := range as {
		if a.Scheme != "file" {
			continue
		}
		d := spec.Field{R: reporter{ck}, Pos: i + 1, N: len(as), Raw: fields[i]}
		d.Add(d.Shown()+" is on the disk of this dyno ("+dynoVar+"="+dyno+"), which Heroku wipes when the dyno exits: every archive written there would be lost",
			"archive to a store that outlives the dyno: s3://bucket/prefix (see `pgoffsite setup-bucket`) or sftp://user@host/absolute/dir; file:// is for a volume mounted on a machine of your own")
	}
}
