// Package procstat reads how much CPU a process has used from Linux's
// /proc, so that a benchmark running its parts as separate processes can
// charge each part its own CPU time (user and system, every thread) over
// a measured window, rather than sharing one process's figure out by
// guesswork.
package procstat
