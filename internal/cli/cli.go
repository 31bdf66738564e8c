// Package cli is pgoffsite's command line: each command parses its flags into its options,
// takes its configuration and clients from a Factory, does its work, and returns an error that
// Execute turns into the exit status.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/pgoffsite/pgoffsite/internal/version"
	"github.com/spf13/cobra"
)

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

// Run runs one command with the production factory and returns its exit status. Cancelling ctx
// interrupts it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Execute(ctx, NewFactory(stdout, stderr), args)
}

// Execute runs one command with the dependencies of f and returns its exit status.
func Execute(ctx context.Context, f *Factory, args []string) int {
	defer f.close()
	root := newRoot(f)
	root.SetArgs(args)
	return exitStatus(f.Stderr, root.ExecuteContext(ctx))
}

// newRoot is the command tree: one command per file, each with its options and run function.
func newRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "pgoffsite COMMAND",
		Short: "pgoffsite keeps off-site copies of Heroku Postgres backups in a bucket you own.",
		Long: "pgoffsite keeps off-site copies of Heroku Postgres backups in a bucket you own.\n\n" +
			"Configuration comes from environment variables (Heroku config vars); see docs/configuration.md.",
		Version: versionString(),
		// With no command it prints its help to stderr and exits 2; an unknown one is named.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(f.Stderr)
				cmd.HelpFunc()(cmd, args)
				return exitWith(ExitUsage)
			}
			return unknownCommand(cmd, args[0])
		},
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
	}
	root.SetOut(f.Stdout)
	root.SetErr(f.Stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageErr(cmd, err.Error()) })
	root.SetHelpFunc(help)
	root.AddCommand(
		newBackupCmd(f), newBundleCmd(f), newRestoreAppCmd(f), newCheckCmd(f), newVerifyCmd(f), newDrillCmd(f),
		newStatusCmd(f), newListCmd(f), newRestoreCmd(f), newSetupBucketCmd(f), newPolicyCmd(f), newVersionCmd(f),
	)
	return root
}

// versionString is what `pgoffsite version` and --version print.
func versionString() string { return "pgoffsite " + version.Version }

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  noArgs("it prints the version"),
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(f.Stdout, versionString()+"\n")
			return err
		},
	}
}
