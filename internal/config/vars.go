package config

import "slices"

// VarDoc documents one configuration variable. The table Describe returns is the one source of
// each variable's name, default, description and readers: readEnv takes the defaults from it,
// LoadFor the commands, and gendocs writes app.json's env and docs/configuration.md's table from it.
type VarDoc struct {
	Name string
	// Required variables are what a first backup needs: the Deploy button (app.json) asks for
	// them alone, since every other has a default or is optional.
	Required    bool
	Default     string
	Description string
	// Advanced variables are overrides for tests, the demo or unusual setups: docs/configuration.md
	// lists them in a table of their own.
	Advanced bool
	// Commands read the variable: a mistake in it stops them (LoadFor), and only them.
	Commands []string
	// More is what docs/configuration.md says after Description, in markdown: links to the other
	// pages of docs/ (relative to that directory) and details the Deploy form need not show.
	More string
}

// The commands, grouped by what they read.
var (
	// writers hold the uploader's keys and write archives: a key that could decrypt those
	// archives is a problem there (Problem.decrypts), and nowhere else.
	writers = []string{"backup", "bundle", "check"}
	// readers read archives back.
	readers = []string{"verify", "status", "restore", "restore-app", "list"}
	// runs open targets and destinations with their credentials: every command but the bucket ones.
	runs = slices.Concat(writers, readers, []string{"drill"})
	// bucketCommands work on the S3 bucket alone, before the Heroku side is configured.
	bucketCommands = []string{"setup-bucket", "policy"}
	// s3Commands read the S3 settings and the logging ones: runs and setup-bucket.
	s3Commands = append(slices.Clone(runs), "setup-bucket")
)

// Commands are every command that reads the environment, as the table names them.
func Commands() []string { return slices.Concat(runs, bucketCommands) }

// undescribed are read but not in the table, since pgoffsite does not configure them: the AWS
// SDK's other credential sources (only checked for presence), the Go runtime's GOMEMLIMIT, and
// ChildVar, which a coordinator sets on the dynos it starts.
var undescribed = []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", goMemLimitVar, ChildVar}

// Describe lists every variable pgoffsite reads, in the order docs/configuration.md and app.json present them.
func Describe() []VarDoc {
	return []VarDoc{
		{Name: "HEROKU_API_KEY", Required: true, Commands: slices.Concat(writers, []string{"restore", "restore-app", "drill"}),
			Description: "Heroku API key with access to the target apps. Use a long-lived one from `heroku authorizations:create` (keys from `heroku login` expire)."},
		{Name: "BACKUP_TARGETS", Required: true, Commands: slices.Concat(writers, []string{"verify", "status", "drill"}),
			Description: "Space- or comma-separated `app` or `app:DATABASE` (DATABASE defaults to DATABASE_URL; any name the Heroku CLI accepts, e.g. HEROKU_POSTGRESQL_PINK or other-app::DATABASE_URL), or `env:VAR`: a Postgres URL in the variable VAR of pgoffsite's own environment (a read-only credential attached to this app, a Dokku or any other Postgres), dumped with pg_dump and filed under VAR. `all`: every Heroku Postgres database the key can see, each once (by its add-on, however many apps it is attached to), less BACKUP_EXCLUDE; `pgoffsite check` lists those no target covers.",
			More:        "See [Any Postgres with pg_dump](backups.md#any-postgres-with-pg_dump)."},
		{Name: "BACKUP_EXCLUDE", Commands: slices.Concat(writers, []string{"verify", "status", "drill"}),
			Description: "With BACKUP_TARGETS=all: the Heroku databases to leave out, written as BACKUP_TARGETS's (`app` for its DATABASE_URL, `app:DATABASE` for another attachment or add-on name), separated by spaces or commas. One that matches none of the databases the key can see is an error.",
			More:        "See [Every database](backups.md#every-database)."},
		{Name: "ARCHIVE_URL", Required: true, Commands: Commands(),
			Description: "Where archives go: one or more destinations separated by spaces or commas, each backup read once and written to all of them. s3://bucket/optional/prefix, with query parameters for a provider other than AWS: endpoint=https://..., region=, path_style=true, storage_class=, sse=, keys=NAME (credentials from NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY instead of the AWS ones). sftp://user@host[:port]/absolute/dir (key=NAME for a private key in NAME instead of SFTP_PRIVATE_KEY). file:///absolute/dir for a mounted volume. Never credentials in the URL itself.",
			More:        "A parameter left out takes the global setting (`AWS_REGION`, `S3_STORAGE_CLASS`, …); a `user:password@` in the URL is refused."},
		{Name: "SFTP_PRIVATE_KEY", Commands: runs,
			Description: "For sftp:// destinations: the text of an unencrypted private key (OpenSSH or PEM) made for pgoffsite alone (ssh-keygen -t ed25519 -N ''); the dyno cannot type a passphrase. key=NAME in a destination reads the variable NAME instead.",
			More:        "Set it with `heroku config:set SFTP_PRIVATE_KEY=\"$(cat pgoffsite_ed25519)\"`."},
		{Name: "SFTP_KNOWN_HOSTS", Commands: runs,
			Description: "For sftp:// destinations: known_hosts lines pinning each server's host key, as `ssh-keyscan -p PORT HOST` prints them (check them against the server's own fingerprint). No trust on first use: a server without a line here is refused.",
			More:        "The server's own fingerprint: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server."},
		{Name: "BACKUP_MODE", Default: "capture", Commands: runs,
			Description: "capture: ask Heroku for a new backup; latest: archive the newest successful backup Heroku already has."},
		{Name: "BACKUP_METHOD", Default: "pgbackups", Commands: runs,
			Description: "How Heroku targets are backed up. pgbackups: Heroku's own backups (BACKUP_MODE). pg_dump: run pg_dump against the database's URL (its attachment's config var, read through the Platform API, over TLS), for databases past PGBackups' 20 GB. fork: pg_dump a fork of the database, provisioned for the dump on the pgoffsite app (HEROKU_APP_NAME, FORK_PLAN) and deleted after it, so that production carries no dump load; not for Essential-tier databases (Heroku has no forks there) nor env: targets.",
			More:        "See [Fork capture](large-databases.md#fork-capture)."},
		{Name: "FORK_PLAN", Commands: []string{"backup", "check"},
			Description: "BACKUP_METHOD=fork: the plan of each fork (a Standard or higher heroku-postgresql plan, e.g. standard-0); default: the forked database's own plan. A fork is billed by the second while it lives; its storage must hold the database."},
		{Name: "FORK_TIMEOUT", Default: "12h", Commands: []string{"backup", "check"},
			Description: "BACKUP_METHOD=fork: how long one fork capture may take, provisioning to deletion (a duration: 12h, 90m, 1d); forks older than this on the pgoffsite app are left-overs of a killed run, removed by the next backup and reported by pgoffsite check."},
		{Name: "PG_DUMP_PATH", Commands: runs,
			Description: "pg_dump to run for pg_dump backups; default: pg_dump on PATH (Heroku's stacks ship a current one). It must not be older than the server."},
		{Name: "PG_DUMP_JOBS", Default: "1", Commands: runs,
			Description: "pg_dump backups (BACKUP_METHOD=pg_dump and env: targets): how many pg_dump processes dump one database at once (1-16), all reading one exported snapshot, so the archive is as consistent as a single pg_dump's. Above 1 the archive is a set: the first stream (schema, sequences, large objects, small tables' data) and one part per other stream, each checked, hashed, encrypted and stored like a dump, the manifest written last. Each stream is a connection to the database, plus one that holds the snapshot; the streams share ARCHIVE_MEMORY_LIMIT as BACKUP_PARALLEL's targets do.",
			More:        "See [Large databases](large-databases.md)."},
		{Name: "PG_DUMP_EXCLUDE_TABLE_DATA", Commands: runs,
			Description: "pg_dump backups: tables whose rows are left out (their definitions stay), as pg_dump's --exclude-table-data patterns (schema.table, * and ? as wildcards, double quotes for exact names; a space or comma in a name is matched by ? outside the quotes: public.\"Big\"?\"Log\"), separated by spaces or commas. A pattern that matches nothing is ignored by pg_dump, silently.",
			More:        "See [Large databases](large-databases.md#leaving-data-out)."},
		{Name: "PG_DUMP_EXCLUDE_SCHEMA", Commands: runs,
			Description: "pg_dump backups: schemas left out whole, as pg_dump's --exclude-schema patterns, separated by spaces or commas. Heroku targets always leave out heroku_ext, as Heroku's own backups do.",
			More:        "See [Large databases](large-databases.md#leaving-data-out)."},
		{Name: "PG_DUMP_COMPRESS", Commands: runs,
			Description: "pg_dump backups: pg_dump's --compress. A gzip level from 0 (none) to 9; default: pg_dump's own (gzip level 6). pg_dump's compression is often what limits a dump's speed: 1, the fastest level, takes much less CPU for a somewhat larger archive. With pg_dump 16 or newer also lz4, zstd, or METHOD:LEVEL (restoring those needs pg_restore 16 or newer).",
			More:        "See [Large databases](large-databases.md#compression)."},
		{Name: "BACKUP_MAX_AGE", Default: "26h", Commands: runs,
			Description: "In latest mode, refuse a backup older than this (a duration: 26h, 90m, 2d; a stale backup means Heroku's schedule stopped). pgoffsite status fails a target whose newest archive is older."},
		{Name: "BACKUP_APP_BUNDLE", Default: "false", Commands: runs,
			Description: "true: the backup also archives each app of BACKUP_TARGETS once, its whole runtime: the current release's slug, release.json (buildpacks, process types, formation, add-ons, domains, region, config var names) and, only with ARCHIVE_RECIPIENTS, its config var values encrypted (config.age). pgoffsite bundle does it alone. Put back with pgoffsite restore-app.",
			More:        "See [The whole app](bundles.md#the-whole-app-bundles-and-restore-app)."},
		{Name: "BUNDLE_SIGNING_KEY", Commands: runs,
			Description: "pgoffsite bundle (and BACKUP_APP_BUNDLE): the text of an unencrypted ed25519 private key made for bundles alone (ssh-keygen -t ed25519 -N '' -C pgoffsite-bundles -f bundle-signing), which signs each bundle's release.json and its config values. restore-app, given the public half (BUNDLE_VERIFY_KEY), refuses every bundle it did not sign, such as one written with a leaked uploader key.",
			More:        "Set it with `heroku config:set BUNDLE_SIGNING_KEY=\"$(cat bundle-signing)\"`."},
		{Name: "BUNDLE_VERIFY_KEY", Advanced: true, Commands: runs,
			Description: "restore-app only: the public half of BUNDLE_SIGNING_KEY (the ssh-ed25519 line of bundle-signing.pub), or --verify-key FILE. When given, restore-app refuses a bundle that is unsigned or not signed by it.",
			More:        "Where `BUNDLE_SIGNING_KEY` is set, its public half is used without being asked."},
		{Name: "BACKUP_CAPTURE_TIMEOUT", Default: "6h", Commands: runs,
			Description: "How long a capture may run on Heroku before the target fails (a duration: 6h, 90m, 1d)."},
		{Name: "BACKUP_PARALLEL", Default: "1", Commands: runs,
			Description: "Targets archived at once in one process (1-16). They share ARCHIVE_MEMORY_LIMIT: each gets an equal part of it, so each streams with fewer buffers, and the process needs no more memory.",
			More:        "See [Many databases](many-databases.md)."},
		{Name: "BACKUP_FANOUT", Default: "0", Commands: runs,
			Description: "When above 0, the run Scheduler starts coordinates: it archives each target in a detached one-off dyno of this app (`pgoffsite backup --target APP:DATABASE`), at most this many at once (1-50), follows them through their logs, starts a dyno that vanished once more, stops them all on SIGTERM, and sends one heartbeat, one webhook and one summary for the run. Needs `heroku labs:enable runtime-dyno-metadata` (for HEROKU_APP_NAME); every dyno, the coordinator's included, counts against the app's concurrent one-off dyno limit (50 Basic/Standard, 5 Performance, 1 Eco). Not on a Fir-generation app: set BACKUP_FANOUT=0 there.",
			More:        "See [Many databases](many-databases.md)."},
		{Name: "BACKUP_DYNO_SIZE", Default: "standard-1X", Commands: runs,
			Description: "Size of the one-off dynos BACKUP_FANOUT starts, e.g. standard-1X, standard-2X or performance-M."},
		{Name: "HEROKU_APP_NAME", Advanced: true, Commands: []string{"backup", "check", "drill"},
			Description: "The name of the app pgoffsite runs as, which Heroku sets with dyno metadata (`heroku labs:enable runtime-dyno-metadata`): BACKUP_FANOUT starts its one-off dynos there, pgoffsite drill provisions its throwaway databases there, and BACKUP_METHOD=fork its forks. Set it by hand only where Heroku does not."},
		{Name: "STATUS_MAX_SHRINK", Default: "50%", Commands: runs,
			Description: "pgoffsite status fails a target whose newest archive is smaller than the median of the week before by more than this percentage (a sudden drop is the classic sign of a broken dump)."},
		{Name: "DRILL_PLAN", Default: "heroku-postgresql:essential-0", Commands: []string{"drill"},
			Description: "pgoffsite drill: the plan of the throwaway Heroku Postgres add-on each drill restores into (its storage must hold the archive's data).",
			More:        "See [Restore drills](restore.md#restore-drills)."},
		{Name: "DRILL_CHECKS", Commands: []string{"drill"},
			Description: "pgoffsite drill: SQL statements separated by ;, each answering one boolean, run on the restored database, e.g. select count(*) > 0 from orders where created_at > now() - interval '2 days'. A false one fails the drill."},
		{Name: "DRILL_TIMEOUT", Default: "2h", Commands: []string{"drill"},
			Description: "pgoffsite drill: how long one drill may take (a duration: 2h, 90m, 1d); drill add-ons older than this are left-overs of a killed drill, removed by the next."},
		{Name: "AWS_REGION", Required: true, Commands: s3Commands,
			Description: "The bucket's region, e.g. eu-west-1."},
		{Name: "AWS_DEFAULT_REGION", Advanced: true, Commands: s3Commands,
			Description: "Read when AWS_REGION is not set."},
		{Name: "AWS_ACCESS_KEY_ID", Required: true, Commands: s3Commands,
			Description: "Access key of the uploader: it needs only s3:PutObject and s3:AbortMultipartUpload on the archive prefix, and for RETENTION the retention tag and the listing of its markers (`pgoffsite policy` prints exactly that).",
			More:        "Any source of the AWS SDK's default chain works too."},
		{Name: "AWS_SECRET_ACCESS_KEY", Required: true, Commands: s3Commands,
			Description: "Secret key of the uploader."},
		{Name: "AWS_ENDPOINT_URL_S3", Commands: s3Commands,
			Description: "Endpoint of an S3-compatible store (MinIO, R2, B2, ...); leave empty for AWS S3."},
		{Name: "AWS_ENDPOINT_URL", Advanced: true, Commands: s3Commands,
			Description: "Endpoint for every AWS service; AWS_ENDPOINT_URL_S3 wins when both are set."},
		{Name: "S3_FORCE_PATH_STYLE", Default: "false", Commands: s3Commands,
			Description: "true for path-style requests (most S3-compatible stores need it)."},
		{Name: "S3_STORAGE_CLASS", Default: "STANDARD", Commands: s3Commands,
			Description: "Storage class of new archives, e.g. STANDARD or STANDARD_IA. Prefer lifecycle rules to move them to Glacier later."},
		{Name: "S3_SSE", Commands: s3Commands,
			Description: "Server-side encryption: empty (the bucket's default), AES256 or aws:kms."},
		{Name: "S3_SSE_KMS_KEY_ID", Commands: s3Commands,
			Description: "KMS key for S3_SSE=aws:kms."},
		{Name: "HEROKU_API_URL", Default: "https://api.heroku.com", Advanced: true, Commands: runs,
			Description: "Platform API base URL: https, or http to this machine only."},
		{Name: "HEROKU_DATA_API_URL", Default: "https://api.data.heroku.com", Advanced: true, Commands: runs,
			Description: "Data API (backups) base URL: https, or http to this machine only."},
		{Name: "LOG_LEVEL", Default: "info", Commands: s3Commands,
			Description: "debug, info, warn or error."},
		{Name: "LOG_FORMAT", Default: "logfmt", Commands: s3Commands,
			Description: "logfmt (what Heroku's log viewer and drains read) or json."},
		{Name: "HEARTBEAT_URL", Commands: []string{"backup", "check"},
			Description: "Dead man's switch of pgoffsite backup alone (healthchecks.io convention: /start, success, /fail), so a backup that fails or never happens is noticed. verify, status, drill and bundle never ping it: each reports to its own variable below, or to none, so that their runs cannot keep a stopped backup's switch green.",
			More:        "`pgoffsite check` warns when two of these variables hold the same URL."},
		{Name: "BUNDLE_HEARTBEAT_URL", Commands: runs,
			Description: "Dead man's switch of pgoffsite bundle when it runs on its own (the HEARTBEAT_URL convention). bundle never pings HEARTBEAT_URL: its runs must not keep a stopped backup's switch green."},
		{Name: "VERIFY_HEARTBEAT_URL", Advanced: true, Commands: []string{"verify", "check"},
			Description: "Dead man's switch of pgoffsite verify (the HEARTBEAT_URL convention), for a scheduled verification; unset: verify pings nothing. Never the same URL as HEARTBEAT_URL."},
		{Name: "STATUS_HEARTBEAT_URL", Advanced: true, Commands: []string{"status", "check"},
			Description: "Dead man's switch of pgoffsite status (the HEARTBEAT_URL convention), for the watchdog run by Scheduler; unset: status pings nothing. Never the same URL as HEARTBEAT_URL."},
		{Name: "DRILL_HEARTBEAT_URL", Advanced: true, Commands: []string{"drill", "check"},
			Description: "Dead man's switch of pgoffsite drill (the HEARTBEAT_URL convention), for scheduled restore drills; unset: drill pings nothing. Never the same URL as HEARTBEAT_URL."},
		{Name: "NOTIFY_WEBHOOK_URL", Commands: runs,
			Description: "Webhook for run results: a Slack incoming webhook gets a readable message, any other URL the JSON of docs/webhook.md.",
			More:        "See [webhook.md](webhook.md)."},
		{Name: "NOTIFY_ON", Default: "failure", Commands: runs,
			Description: "failure: notify the webhook only when a target failed; always: after every run."},
		{Name: "ARCHIVE_CONCURRENCY", Default: "16", Commands: runs,
			Description: "The most ranges of the download in flight, each of 2 MiB (1-64). The number used is measured while the download runs: it starts at 4 and doubles while that pays, and drops when the source answers 503 SlowDown; the log says what it chose and why. S3 serves one connection a fraction of a host's bandwidth, so several at once are much faster.",
			More:        "The log line `download connections chosen` says how many and why."},
		{Name: "ARCHIVE_PART_SIZE", Default: "8MiB", Commands: runs,
			Description: "Size of each upload part (5MiB-5GiB). Grown automatically when an archive would need more than S3's 10,000 parts."},
		{Name: "ARCHIVE_MEMORY_LIMIT", Default: "96MiB", Commands: runs,
			Description: "Memory the buffers may take: (concurrency + 1) download ranges of 2 MiB plus (upload concurrency + 1) parts per S3 destination; the uploads are lowered first (to two per destination), then both, to fit. The default suits a 512 MB dyno.",
			More:        "The Go runtime's memory limit is set to this plus 12 MiB (unless `GOMEMLIMIT` is set), so that garbage is collected before the process grows past it."},
		{Name: "ARCHIVE_CHECK", Default: "auto", Commands: runs,
			Description: "auto: check the whole structure while the archive streams (TOC, every data block's framing) and decompress every block, rows counted; an archive under 64 MiB is always decompressed whole, a bigger one as long as that makes the download wait no more than 25 ms plus 2% of its time, beyond which the table being decompressed is checked for framing only and named in the log, the summary line, the webhook and the manifest. full: decompress every block of every archive, even when that slows the run. header: check only the header. Damage a check finds fails the target, and the archive is not published.",
			More:        "See \"Proving the archives restore\"."},
		{Name: "ARCHIVE_RECIPIENTS", Commands: runs,
			Description: "age recipients (age1... X25519 keys, or ssh-ed25519 / ssh-rsa public keys), separated by line breaks, spaces or commas: when set, every destination receives the archive encrypted to them (.dump.age). Public keys only: nothing where backups run can decrypt.",
			More:        "An identity (`AGE-SECRET-KEY-…`) pasted here is refused."},
		{Name: "AGE_IDENTITY", Advanced: true, Commands: slices.Concat(writers, []string{"verify", "restore", "restore-app", "drill"}),
			Description: "verify and restore only: the text of an age identity file, to decrypt encrypted archives (or --identity FILE). backup and check refuse to run while it is set: keep the identity offline, never in the backup app's config."},
		{Name: "RETENTION", Commands: s3Commands,
			Description: "Keep archives for years, cheaply: classes and how long each is kept, separated by spaces or commas, e.g. `daily=35d weekly=13w monthly=25m yearly=7y` (d, w, m, y: days, weeks, months of 31 days, years of 366 days; daily required, the others optional). The first archive of each year, month and ISO week is tagged yearly, monthly or weekly (S3 tag retention=CLASS, and the manifest), the others daily; setup-bucket reads it to write one lifecycle rule per class. Unset: one expiry for every archive (BUCKET_EXPIRE_DAYS).",
			More:        "See \"Keeping archives for years (RETENTION)\"."},
		{Name: "RETENTION_TIMEZONE", Default: "UTC", Commands: s3Commands,
			Description: "IANA time zone (e.g. Europe/Berlin) in which a backup's day, ISO week, month and year are counted, from the time it finished."},
		// setup-bucket's settings (its flags override them). They are for whoever runs setup-bucket
		// with administrator keys, not for the dyno: app.json does not ask for them.
		{Name: "BUCKET_TRANSITION_DAYS", Default: "30", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--transition-days): days before archives move to BUCKET_TRANSITION_CLASS; -1 = never (stores without Glacier)."},
		{Name: "BUCKET_TRANSITION_CLASS", Default: "GLACIER", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--transition-class): GLACIER, GLACIER_IR or DEEP_ARCHIVE."},
		{Name: "BUCKET_DEEP_ARCHIVE_DAYS", Default: "0", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--deep-archive-days): days before archives move on to DEEP_ARCHIVE; 0 = never."},
		{Name: "BUCKET_EXPIRE_DAYS", Default: "400", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--expire-days): days before archives expire; 0 = never."},
		{Name: "BUCKET_NONCURRENT_EXPIRE_DAYS", Default: "30", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--noncurrent-expire-days): days before overwritten or deleted versions are removed.",
			More:        "Never fewer than the archives are kept."},
		{Name: "BUCKET_OBJECT_LOCK_DAYS", Default: "0", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--object-lock-days): default Object Lock retention in days; 0 = none."},
		{Name: "BUCKET_OBJECT_LOCK_MODE", Advanced: true, Commands: []string{"setup-bucket"},
			Description: "setup-bucket (--object-lock-mode): GOVERNANCE (the default with BUCKET_OBJECT_LOCK_DAYS) or COMPLIANCE."},
	}
}

// ReadBy lists the variables command reads, in the table's order: what its help shows.
func ReadBy(command string) []VarDoc {
	var ds []VarDoc
	for _, d := range Describe() {
		if slices.Contains(d.Commands, command) {
			ds = append(ds, d)
		}
	}
	return ds
}
