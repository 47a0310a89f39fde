// Command promql parses PromQL expressions with Prometheus' own parser
// (github.com/prometheus/prometheus/promql/parser v0.316.0, with promtool's default options) and
// reports, for each, the metric names and label names it selects on, or the parse error.
//
// Input (stdin, JSON): a list of expressions. Output (stdout, JSON): one
// {"expr", "metrics": [...], "labels": [...], "grouping": [...], "error"} per expression;
// "labels" are the label names of selectors' matchers (other than __name__), "grouping" the
// label names of by/without/on/ignoring clauses and label_replace/label_join arguments.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr     string   `json:"expr"`
	Metrics  []string `json:"metrics"`
	Labels   []string `json:"labels"`
	Grouping []string `json:"grouping"`
	Error    string   `json:"error,omitempty"`
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func inspect(expr string) result {
	r := result{Expr: expr, Metrics: []string{}, Labels: []string{}, Grouping: []string{}}
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr) // promtool's default options
	if err != nil {
		r.Error = err.Error()
		return r
	}
	metrics, lbls, grouping := map[string]bool{}, map[string]bool{}, map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch v := n.(type) {
		case *parser.VectorSelector:
			for _, m := range v.LabelMatchers {
				if m.Name == labels.MetricName {
					if m.Type == labels.MatchEqual {
						metrics[m.Value] = true
					}
				} else {
					lbls[m.Name] = true
				}
			}
		case *parser.AggregateExpr:
			for _, g := range v.Grouping {
				grouping[g] = true
			}
		case *parser.BinaryExpr:
			if v.VectorMatching != nil {
				for _, g := range v.VectorMatching.MatchingLabels {
					grouping[g] = true
				}
				for _, g := range v.VectorMatching.Include {
					grouping[g] = true
				}
			}
		}
		return nil
	})
	r.Metrics, r.Labels, r.Grouping = keys(metrics), keys(lbls), keys(grouping)
	return r
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "parse input:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, inspect(e))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(2)
	}
}
