// Command kstatus computes the kstatus status (sigs.k8s.io/cli-utils/pkg/kstatus/status) of
// Kubernetes objects: it reads one JSON object, or a JSON list of objects, on stdin and prints
// a JSON list with, for each object, {"name", "kind", "status", "message"} where status is one
// of InProgress, Failed, Current, Terminating, NotFound, Unknown.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name       string             `json:"name"`
	Namespace  string             `json:"namespace,omitempty"`
	Kind       string             `json:"kind"`
	Status     string             `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions,omitempty"`
	Error      string             `json:"error,omitempty"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		os.Exit(2)
	}
	var objs []map[string]any
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		err = utiljson.Unmarshal(data, &objs) // numbers -> int64 where integral, as unstructured expects
	} else {
		var one map[string]any
		err = utiljson.Unmarshal(data, &one)
		objs = []map[string]any{one}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse JSON:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(objs))
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		r := result{Name: u.GetName(), Namespace: u.GetNamespace(), Kind: u.GetKind()}
		res, err := status.Compute(u)
		if err != nil {
			r.Status = string(status.UnknownStatus)
			r.Error = err.Error()
		} else {
			r.Status = string(res.Status)
			r.Message = res.Message
			r.Conditions = res.Conditions
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(2)
	}
}
