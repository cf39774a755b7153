package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// peakRSS returns the peak resident set size of the running process pid, in
// bytes: VmHWM ("high water mark") in /proc/PID/status. It works on Linux
// only, and not for a process that has exited: a zombie has no memory
// lines left.
func peakRSS(pid int) (int64, error) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the peak memory of pid %d: %w", pid, err)
	}
	n, err := parseVmHWM(string(status))
	if err != nil {
		return 0, fmt.Errorf("reading the peak memory of pid %d: %w", pid, err)
	}
	return n, nil
}

// parseVmHWM returns the VmHWM line of a /proc/PID/status text in bytes.
// The kernel writes it as "VmHWM:\t    1234 kB", kB meaning KiB.
func parseVmHWM(status string) (int64, error) {
	for line := range strings.Lines(status) {
		value, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected line %q", strings.TrimSpace(line))
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kib < 0 || kib > math.MaxInt64/1024 {
			return 0, fmt.Errorf("unexpected line %q", strings.TrimSpace(line))
		}
		return kib * 1024, nil
	}
	return 0, errors.New("no VmHWM line in its status (has it exited?)")
}
