package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// Exit statuses (design notes: "Exit status").
const (
	ExitOK          = 0   // every target archived
	ExitFailed      = 1   // at least one target failed; the others still ran
	ExitUsage       = 2   // bad configuration or usage
	ExitInterrupted = 130 // SIGINT
	ExitTerminated  = 143 // SIGTERM (dyno restart, heroku ps:stop)
)

// exitError ends a command with its code once what went wrong has been said: logged, or printed
// as the command's own output.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitWith is the error that ends a command with code, whose cause has been reported; nil for
// ExitOK.
func exitWith(code int) error {
	if code == ExitOK {
		return nil
	}
	return &exitError{code: code}
}

// failedOn is nil when err is; otherwise it logs err once, under msg, and ends the command
// with exit status 1.
func failedOn(log zerolog.Logger, err error, msg string) error {
	if err == nil {
		return nil
	}
	log.Error().Err(err).Msg(msg)
	return exitWith(ExitFailed)
}

// usageError is a command line the command cannot run: said as it is, exit status 2.
type usageError struct {
	msg  string
	help string // the command whose help says more; "" when the message says what to do
}

func (e *usageError) Error() string { return e.msg }

// usageErr is a command line that cobra could not parse (a flag, an argument): the message, the
// command's usage line and where its help is.
func usageErr(cmd *cobra.Command, msg string) error {
	return &usageError{msg: cmd.CommandPath() + ": " + msg + "\nUsage: " + cmd.UseLine(), help: cmd.CommandPath()}
}

// badUsage is a usage mistake the command found in its options; the message says what to do.
func badUsage(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// configError is configuration that has problems, found before anything was contacted.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

func badConfig(err error) error {
	var fe *failedError
	if errors.As(err, &fe) {
		return err
	}
	return &configError{err: err}
}

// failedError is a failure met while the configuration was completed from the outside world
// (Heroku listing BACKUP_TARGETS=all's databases): the configuration is not wrong, the run
// failed (1).
type failedError struct{ err error }

func (e *failedError) Error() string { return e.err.Error() }
func (e *failedError) Unwrap() error { return e.err }

// exitStatus says what ended cmd and returns the exit status: the one place errors become
// statuses. An error no type claims failed the command (1). So does every cloud error, whatever
// its class (s3err: denied, wrong keys, no bucket, another region, DNS, TLS, SlowDown): the
// configuration was read and the store answered, so the run failed; its text names the
// variable to fix. A region spelled unlike one is a configuration error (2), found first.
func exitStatus(stderr io.Writer, err error) int {
	var (
		ee *exitError
		ue *usageError
		ce *configError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, ue.msg)
		if ue.help != "" {
			fmt.Fprintf(stderr, "Run `%s --help` for its flags, variables and an example.\n", ue.help)
		}
		return ExitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "pgoffsite: the configuration has problems; nothing was done:\n%s\n", ce.err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "pgoffsite: %v\n", err)
	return ExitFailed
}

// noArgs refuses arguments where a command takes only flags; from says where the command's
// input comes from instead.
func noArgs(from string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return badUsage("%s takes no arguments (got %q): %s", cmd.CommandPath(), args, from)
		}
		return nil
	}
}

// noArguments refuses arguments where a command takes only flags that name its input.
func noArguments(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return badUsage("%s: unexpected arguments %q", cmd.CommandPath(), args)
	}
	return nil
}

// unknownCommand names a word that is no command, with the commands it may have meant.
func unknownCommand(root *cobra.Command, name string) error {
	msg := fmt.Sprintf("pgoffsite: unknown command %q", name)
	if s := root.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &usageError{msg: msg + "\nRun `pgoffsite help` for the list of commands.", help: ""}
}
