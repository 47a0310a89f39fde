//go:build tools

// Package tools pins the real promtool (github.com/prometheus/prometheus/cmd/promtool) as a
// dependency of this module; tests/harness/gotools.py builds that package from here.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
