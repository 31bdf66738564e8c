package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/listing"
)

// listOptions are the options of `pgoffsite list`.
type listOptions struct {
	JSON        bool
	Destination string
}

func newListCmd(f *Factory) *cobra.Command {
	o := &listOptions{}
	cmd := &cobra.Command{
		Use:   "list [TARGET] [--json] [--destination N]",
		Short: "with read credentials: every archive at a destination, newest first, with the key to pass on",
		Long: "With read credentials: every archive at a destination (or of TARGET: app, app:DATABASE or env:VAR), newest\n" +
			"first: when the backup was taken and finished, its size, whether it is encrypted, its last verification, and\n" +
			"the key that restore, verify and restore-app take as --from. A dump whose manifest does not prove it, or a\n" +
			"verification record that is not its own, is shown as such with the reason, never as a good archive.",
		Example: "  pgoffsite list\n  pgoffsite list shop:DATABASE_URL --json\n  pgoffsite restore --from \"$(pgoffsite list shop --json | jq -r '.archives[0].key')\" --to postgres://localhost/scratch",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return badUsage("%s takes one TARGET at most (got %q)", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runList(cmd.Context(), f, o, strings.Join(args, ""))
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.JSON, "json", false, "print the archives as JSON instead of a table")
	fs.StringVar(&o.Destination, "destination", "", "list this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	return cmd
}

// runList is `pgoffsite list`: the archives at the destination, as listing finds and judges them.
func runList(ctx context.Context, f *Factory, o *listOptions, target string) error {
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "list") }
	cfg, err := f.Config()
	if err != nil {
		return badConfig(err)
	}
	log := f.Logger()
	src, err := f.readSource(ctx, cfg)
	if err != nil {
		return err
	}
	archives, err := listing.List(ctx, src, target, f.Now())
	var ue *listing.UsageError
	if errors.As(err, &ue) {
		return badUsage("pgoffsite list: %v", ue)
	}
	if err != nil {
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot list the archives")
		return exitWith(ExitFailed)
	}
	rep := listing.Report{Destination: cfg.Archive.String(), Timezone: cfg.RetentionZone.String(), Archives: archives}
	if o.JSON {
		err = listing.WriteJSON(f.Stdout, rep)
	} else {
		err = listing.WriteText(f.Stdout, rep, cfg.RetentionZone)
	}
	if err != nil {
		log.Error().Err(err).Msg("cannot write the list")
		return exitWith(ExitFailed)
	}
	return nil
}

// resolveFrom turns what --from names (listing.Forms) into a key at the command's source, read
// with the command's configuration (loaded already); a key passes without a read. What names
// nothing there is a usage error saying what to ask instead.
func (f *Factory) resolveFrom(ctx context.Context, from string, want listing.Want) (string, error) {
	if listing.IsKey(from) {
		return from, nil
	}
	cfg := f.config()
	r := listing.From{Want: want, Here: cfg.Archive.String(), Zone: cfg.RetentionZone, Now: f.Now()}
	for _, a := range cfg.Archives {
		r.All = append(r.All, a.String())
	}
	if listing.ByName(from) {
		src, err := f.readSource(ctx, cfg)
		if err != nil {
			return "", err
		}
		r.Src = src
	}
	res, err := r.Resolve(ctx, from)
	var ue *listing.UsageError
	if errors.As(err, &ue) {
		return "", badUsage("%v", ue)
	}
	log := f.Logger()
	if err != nil {
		log.Error().Err(err).Str("from", from).Msg("cannot find the archive --from names")
		return "", exitWith(ExitFailed)
	}
	for _, p := range res.Passed {
		log.Warn().Str("problem", p).Msg("a newer dump is not an archive to trust: passed over")
	}
	log.Info().Str("from", from).Str("key", res.Key).Msg("archive found")
	return res.Key, nil
}
