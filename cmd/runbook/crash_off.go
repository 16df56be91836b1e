//go:build !crashpoints

package main

import "github.com/cessda/runbook/engine"

// installCrashPoints does nothing in the released binary; see crash.go (-tags crashpoints).
func installCrashPoints(*engine.Options) {}
