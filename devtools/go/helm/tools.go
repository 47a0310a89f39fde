//go:build tools

// Package tools pins the real Helm CLI (helm.sh/helm/v3/cmd/helm) as a dependency of this
// module; tests/harness/gotools.py builds that package from here with `go build`.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
