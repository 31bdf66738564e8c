package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// PeakMemory is a child's peak resident memory in KiB: all of it (VmHWM, which counts the pages
// of the binary's code it touched) and its anonymous part (heap, stacks, buffers). The second is
// what a dyno is charged for: Heroku's memory_rss and R14 come from the cgroup's "rss", which is
// anonymous memory, not the executable's file-backed pages, so the budget tests bound that and
// show the other.
type PeakMemory struct{ Total, Anon int64 }

// RunMeasured runs cmd and returns its own peak memory, read from /proc every 10 ms while it
// runs (VmHWM is kernel-kept; the anonymous peak is sampled, and buffers live far longer than
// 10 ms). The rusage wait returns is no measure of a child of the test: the child starts sharing
// the test process's memory until it execs, and Linux keeps that memory's high-water mark in the
// child's maximum RSS, so under the race detector it reports the test's own peak.
func RunMeasured(cmd *exec.Cmd) (PeakMemory, error) {
	var peak PeakMemory
	if err := cmd.Start(); err != nil {
		return peak, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		now := procStatus(status)
		peak.Total = max(peak.Total, now["VmHWM"])
		peak.Anon = max(peak.Anon, now["RssAnon"])
		select {
		case err := <-done:
			if peak.Total == 0 || peak.Anon == 0 {
				return peak, fmt.Errorf("no memory figure was read from %s: %v", status, err)
			}
			return peak, err
		case <-tick.C:
		}
	}
}

// procStatus reads the "Name:   123456 kB" lines of a /proc/PID/status; empty when it is gone.
func procStatus(path string) map[string]int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	kib := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(rest, " kB") {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &n); err == nil {
			kib[name] = n
		}
	}
	return kib
}
