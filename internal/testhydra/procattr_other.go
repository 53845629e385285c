//go:build !linux

package testhydra

import "syscall"

// dieWithTest: only Linux can tie a child's life to its parent's; the
// tests that start hydra run on Linux (the CLI's are built elsewhere too).
func dieWithTest() *syscall.SysProcAttr { return nil }
