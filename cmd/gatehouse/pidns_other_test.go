//go:build !linux

package main

import "syscall"

func pidNamespace() *syscall.SysProcAttr { return nil }
