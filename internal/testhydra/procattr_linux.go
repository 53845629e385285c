package testhydra

import "syscall"

// dieWithTest makes the provider die with the test binary that started
// it, should that binary die first.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
