package config

import (
	"fmt"
	"strings"
)

// heartbeat is one command's dead man's switch: the variable it is read from and the Config
// field that holds it.
type heartbeat struct {
	command, name string
	raw           string  // as set in the environment
	url           *string // the Config field
}

// heartbeats pairs each command that reports its runs with its own heartbeat variable: a run
// pings its command's alone, so that a daily verify, status or drill never keeps a stopped
// backup's switch green. The one table of which command pings what.
func heartbeats(e env, c *Config) []heartbeat {
	return []heartbeat{
		{"backup", "HEARTBEAT_URL", e.HeartbeatURL, &c.HeartbeatURL},
		{"bundle", bundleHeartbeatVar, e.BundleHeartbeat, &c.BundleHeartbeatURL},
		{"verify", "VERIFY_HEARTBEAT_URL", e.VerifyHeartbeat, &c.VerifyHeartbeatURL},
		{"status", "STATUS_HEARTBEAT_URL", e.StatusHeartbeat, &c.StatusHeartbeatURL},
		{"drill", "DRILL_HEARTBEAT_URL", e.DrillHeartbeat, &c.DrillHeartbeatURL},
	}
}

// heartbeatVars reads every command's heartbeat URL (https, or http to this machine only).
func (ck *checker) heartbeatVars(e env, c *Config) {
	for _, h := range heartbeats(e, c) {
		if h.raw != "" {
			*h.url = ck.httpURL(h.name, h.raw)
		}
	}
}

// Heartbeat is the dead man's switch a run of command pings: the variable and its URL ("" when
// the command has none, or it is unset).
func (c Config) Heartbeat(command string) (name, url string) {
	for _, h := range heartbeats(env{}, &c) {
		if h.command == command {
			return h.name, *h.url
		}
	}
	return "", ""
}

// HeartbeatVars are the variables set to a heartbeat URL, each with its URL, in the table's
// order.
func (c Config) HeartbeatVars() (names, urls []string) {
	for _, h := range heartbeats(env{}, &c) {
		if *h.url != "" {
			names, urls = append(names, h.name), append(urls, *h.url)
		}
	}
	return names, urls
}

// SharedHeartbeats says, for each URL that two or more heartbeat variables hold, which ones
// share it: a check that several commands ping stays green while any of them runs, so a
// stopped backup goes unnoticed as long as a verify or a drill still does. Nil when each
// command has its own.
func (c Config) SharedHeartbeats() []string {
	names, urls := c.HeartbeatVars()
	byURL := map[string][]string{}
	var order []string
	for i, u := range urls {
		if len(byURL[u]) == 0 {
			order = append(order, u)
		}
		byURL[u] = append(byURL[u], names[i])
	}
	var shared []string
	for _, u := range order {
		if vs := byURL[u]; len(vs) > 1 {
			shared = append(shared, fmt.Sprintf("%s hold the same URL", strings.Join(vs, " and ")))
		}
	}
	return shared
}
