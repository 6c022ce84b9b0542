package bench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the child if the benchmark dies
// first, so that no router or provider outlives a crashed run.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
