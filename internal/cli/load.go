package cli

import (
	"errors"
	"fmt"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// loadIdentities reads the age identities of --identity FILE or AGE_IDENTITY (agecrypt), with
// the key's text and each of its lines as secrets for the command's redactor and notifier: the
// key can then never appear in what the command writes.
func loadIdentities(flagPath, env string) (*agecrypt.Identities, []string, error) {
	ids, text, err := agecrypt.LoadIdentities(flagPath, env)
	return ids, config.ValueSecrets(text), err
}

// withIdentityProblem adds a problem with the identity to the configuration's, so that one
// message lists them all; the identity's is scrubbed of its text, which it should not hold.
func withIdentityProblem(cfgErr, idErr error, secrets []string) error {
	if idErr == nil {
		return cfgErr
	}
	idErr = errors.New("  " + scrub.New(secrets...).Scrub(idErr.Error()))
	if cfgErr == nil {
		return idErr
	}
	return errors.Join(cfgErr, idErr)
}

// loadWithIdentity loads the command's configuration and the age identities of --identity or
// AGE_IDENTITY, their problems in one message, and adds the key to the command's secrets.
func loadWithIdentity(f *Factory, identity string) (config.Config, *agecrypt.Identities, error) {
	cfg, err := f.Config()
	ids, idSecrets, idErr := loadIdentities(identity, cfg.AgeIdentity)
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return cfg, nil, badConfig(err)
	}
	f.AddSecrets(idSecrets...)
	return cfg, ids, nil
}

// loadForReading loads the configuration of a command that reads archives (verify, restore),
// with Archive the destination --destination picks.
func loadForReading(choice, command string, opts ...config.Option) (config.Config, error) {
	cfg, err := config.LoadFor(command, opts...)
	if err != nil {
		return cfg, err
	}
	a, err := dest.Pick(cfg.Archives, choice)
	if err != nil {
		return cfg, fmt.Errorf("  --destination: %w", err)
	}
	cfg.Archive = a
	return cfg, nil
}
