//go:build !linux

package theeyetest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
