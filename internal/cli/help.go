package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/config"
)

// varCommands says which commands read each variable of config.Describe(): what a command's
// help lists. Keyed by variable, in the shape of a Commands field of config.VarDoc, for which it
// can be swapped one for one.
func varCommands() map[string][]string {
	writers := []string{"backup", "bundle", "check"}
	readers := []string{"verify", "status", "drill", "restore", "restore-app"}
	withS3 := append(append([]string{"setup-bucket"}, writers...), readers...)
	toHeroku := []string{"backup", "bundle", "check", "drill", "restore", "restore-app"}
	notifies := []string{"backup", "bundle", "check", "verify", "status", "drill"}
	return map[string][]string{
		"HEROKU_API_KEY":                toHeroku,
		"BACKUP_TARGETS":                {"backup", "bundle", "check", "verify", "status", "drill"},
		"ARCHIVE_URL":                   append([]string{"policy"}, withS3...),
		"SFTP_PRIVATE_KEY":              append(slices.Clone(writers), readers...),
		"SFTP_KNOWN_HOSTS":              append(slices.Clone(writers), readers...),
		"BACKUP_MODE":                   {"backup", "check"},
		"BACKUP_METHOD":                 {"backup", "check"},
		"PG_DUMP_PATH":                  {"backup", "check"},
		"BACKUP_MAX_AGE":                {"backup", "check", "status"},
		"BACKUP_APP_BUNDLE":             {"backup"},
		"BUNDLE_SIGNING_KEY":            {"backup", "bundle", "restore-app"},
		"BUNDLE_VERIFY_KEY":             {"restore-app"},
		"BACKUP_CAPTURE_TIMEOUT":        {"backup", "restore"},
		"BACKUP_PARALLEL":               {"backup"},
		"BACKUP_FANOUT":                 {"backup"},
		"BACKUP_DYNO_SIZE":              {"backup"},
		"STATUS_MAX_SHRINK":             {"status"},
		"DRILL_PLAN":                    {"drill"},
		"DRILL_CHECKS":                  {"drill"},
		"DRILL_TIMEOUT":                 {"drill"},
		"AWS_REGION":                    withS3,
		"AWS_DEFAULT_REGION":            withS3,
		"AWS_ACCESS_KEY_ID":             withS3,
		"AWS_SECRET_ACCESS_KEY":         withS3,
		"AWS_ENDPOINT_URL_S3":           withS3,
		"AWS_ENDPOINT_URL":              withS3,
		"S3_FORCE_PATH_STYLE":           withS3,
		"S3_STORAGE_CLASS":              {"backup", "bundle", "check", "setup-bucket"},
		"S3_SSE":                        {"backup", "bundle", "check", "setup-bucket"},
		"S3_SSE_KMS_KEY_ID":             {"backup", "bundle", "check", "setup-bucket"},
		"HEROKU_API_URL":                toHeroku,
		"HEROKU_DATA_API_URL":           toHeroku,
		"LOG_LEVEL":                     withS3,
		"LOG_FORMAT":                    withS3,
		"HEARTBEAT_URL":                 {"backup", "check", "verify", "status", "drill"},
		"BUNDLE_HEARTBEAT_URL":          {"bundle"},
		"NOTIFY_WEBHOOK_URL":            notifies,
		"NOTIFY_ON":                     notifies,
		"ARCHIVE_CONCURRENCY":           {"backup", "bundle"},
		"ARCHIVE_PART_SIZE":             {"backup", "bundle"},
		"ARCHIVE_MEMORY_LIMIT":          {"backup", "bundle"},
		"ARCHIVE_CHECK":                 {"backup"},
		"ARCHIVE_RECIPIENTS":            {"backup", "bundle"},
		"AGE_IDENTITY":                  {"verify", "drill", "restore", "restore-app"},
		"RETENTION":                     {"backup", "check", "status", "setup-bucket"},
		"RETENTION_TIMEZONE":            {"backup", "check", "status", "setup-bucket"},
		"BUCKET_TRANSITION_DAYS":        {"setup-bucket"},
		"BUCKET_TRANSITION_CLASS":       {"setup-bucket"},
		"BUCKET_DEEP_ARCHIVE_DAYS":      {"setup-bucket"},
		"BUCKET_EXPIRE_DAYS":            {"setup-bucket"},
		"BUCKET_NONCURRENT_EXPIRE_DAYS": {"setup-bucket"},
		"BUCKET_OBJECT_LOCK_DAYS":       {"setup-bucket"},
		"BUCKET_OBJECT_LOCK_MODE":       {"setup-bucket"},
	}
}

// commandVars are the variables command reads, in config.Describe()'s order.
func commandVars(command string) []config.VarDoc {
	var out []config.VarDoc
	reads := varCommands()
	for _, d := range config.Describe() {
		if slices.Contains(reads[d.Name], command) {
			out = append(out, d)
		}
	}
	return out
}

// help prints a command's help: what it does, its usage and flags, the variables it reads and an
// example. It reads no configuration.
func help(cmd *cobra.Command, _ []string) {
	w := cmd.OutOrStdout()
	text := cmd.Long
	if text == "" {
		text = cmd.Short
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n", strings.TrimSpace(text), cmd.UseLine())
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() || c.Name() == "help" {
				fmt.Fprintf(w, "  %-13s %s\n", c.Name(), c.Short)
			}
		}
	}
	if fl := cmd.LocalFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fl.FlagUsages())
	}
	if fl := cmd.InheritedFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(w, "\nGlobal flags:\n%s", fl.FlagUsages())
	}
	if vars := commandVars(cmd.Name()); len(vars) > 0 {
		fmt.Fprintln(w, "\nEnvironment variables it reads (README.md describes each):")
		for _, d := range vars {
			writeVar(w, d)
		}
	}
	if cmd.Example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", cmd.Example)
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nRun `%s help COMMAND` for a command's flags, variables and an example.\n", cmd.CommandPath())
	}
}

// writeVar is one variable's line: its name, whether it is required or its default, and the
// first sentence of its description.
func writeVar(w io.Writer, d config.VarDoc) {
	note := ""
	switch {
	case d.Required:
		note = " (required)"
	case d.Default != "":
		note = " (default " + d.Default + ")"
	}
	fmt.Fprintf(w, "  %s%s\n      %s\n", d.Name, note, firstSentence(d.Description))
}

// firstSentence is text up to its first full stop that ends a sentence (not that of "e.g.").
func firstSentence(text string) string {
	for i := 0; i < len(text); i++ {
		if text[i] != '.' || (i+1 < len(text) && text[i+1] != ' ') {
			continue
		}
		if before := text[:i]; !strings.HasSuffix(before, "e.g") && !strings.HasSuffix(before, "i.e") {
			return before
		}
	}
	return strings.TrimSuffix(text, ".")
}
