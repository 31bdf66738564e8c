// Package cli is pgoffsite's command line: each command reads its configuration, wires the
// parts together and turns the outcome into an exit status.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// Exit statuses (design notes: "Exit status").
const (
	ExitOK          = 0   // every target archived
	ExitFailed      = 1   // at least one target failed; the others still ran
	ExitUsage       = 2   // bad configuration or usage
	ExitInterrupted = 130 // SIGINT
	ExitTerminated  = 143 // SIGTERM (dyno restart, heroku ps:stop)
)

const usage = `pgoffsite keeps off-site copies of Heroku Postgres backups in a bucket you own.

Usage:
  pgoffsite backup [--target APP:DATABASE]
                       capture (or take the newest) backup of each target and archive it;
                       --target archives that one instead of BACKUP_TARGETS
  pgoffsite bundle     archive each target app's current release: slug, release.json, and
                       its config values encrypted to ARCHIVE_RECIPIENTS, signed with
                       BUNDLE_SIGNING_KEY (BACKUP_APP_BUNDLE=true makes backup do it too)
  pgoffsite restore-app --from KEY --to NEW_APP --confirm NEW_APP [--identity FILE]
                       [--verify-key FILE] [--allow-buildpack-url] [--allow-formation]
                       put an app bundle (KEY: its release.json) back into a new or empty app,
                       after checking it and printing what it will deploy
  pgoffsite check      preflight: API key, targets, newest backups, archive writable, notifications
  pgoffsite verify [--key KEY] [--restore-to DATABASE_URL] [--identity FILE]
                       with read credentials: check the newest archives against their
                       manifests and structure; with --restore-to, restore and count rows
  pgoffsite drill [--keep] [--identity FILE] [--destination N]
                       restore each target's newest archive into a throwaway Heroku
                       Postgres add-on (DRILL_PLAN) on this app, compare row counts, run
                       DRILL_CHECKS, and delete the add-on; needs HEROKU_APP_NAME
  pgoffsite status [--json] [--html FILE] [--destination N|all]
                       with read credentials: each target's newest archive, the last 30
                       days, sizes and verifications at every destination; exit 1 when one
                       is older than BACKUP_MAX_AGE or shrank more than STATUS_MAX_SHRINK
  pgoffsite restore --from KEY --to app:DATABASE --confirm APP [--identity FILE]
                       ask Heroku to restore an archive into a database (replaces its data);
                       an encrypted one (.dump.age) is decrypted here into pg_restore instead
  pgoffsite restore --from KEY --to postgres://... [--clean --confirm DATABASE]
                       stream an archive into any Postgres with pg_restore, check it, and
                       compare row counts; refuses a database that is not empty unless --clean
  pgoffsite setup-bucket [--dry-run]
                       with administrator credentials, once: make the archive bucket safe
  pgoffsite policy [--reader]
                       print the IAM policy for the uploader (or the verifier) credentials
  pgoffsite version    print the version

Configuration comes from environment variables (Heroku config vars); see README.md.
`

// Main runs the command line with signal handling and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Value // os.Signal
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		got.Store(s)
		cancel()
	}()
	code := Run(ctx, args, stdout, stderr)
	switch got.Load() {
	case syscall.SIGTERM:
		return ExitTerminated
	case syscall.SIGINT:
		return ExitInterrupted
	}
	return code
}

// Run runs one command and returns its exit status. Cancelling ctx interrupts it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "backup":
		target, ok := backupArgs(args[1:], stderr)
		if !ok {
			return ExitUsage
		}
		return runBackup(ctx, stderr, target)
	case "bundle":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "pgoffsite bundle takes no arguments (got %q): apps come from BACKUP_TARGETS\n", args[1:])
			return ExitUsage
		}
		return runArchive(ctx, stderr, "", true)
	case "restore-app":
		return runRestoreApp(ctx, args[1:], stderr)
	case "setup-bucket":
		return runSetupBucket(ctx, args[1:], stdout, stderr)
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stderr)
	case "restore":
		return runRestore(ctx, args[1:], stderr)
	case "drill":
		return runDrill(ctx, args[1:], stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "pgoffsite: unknown command %q\n\n%s", args[0], usage)
		return ExitUsage
	}
}
