// Command node is one binary holding the four node-side Kubernetes components the test
// harness's single-node cluster runs beside the API server harness (tests/apiserver):
//
//	node kubelet ARGS...
//	node kube-controller-manager ARGS...
//	node kube-scheduler ARGS...
//	node kube-proxy ARGS...
//
// One `go build` compiles the packages they share once. Build it with
// -ldflags "-X k8s.io/component-base/version.gitVersion=v1.36.3" (tests/harness/node_build.py
// does), or the Node reports v0.0.0-master.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var commands = map[string]func() *cobra.Command{
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-controller-manager": func() *cobra.Command { return controllermanager.NewControllerManagerCommand() },
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kube-proxy":              func() *cobra.Command { return proxy.NewProxyCommand() },
}

func main() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintf(os.Stderr, "usage: %s {%v} ARGS...\n", os.Args[0], names)
		os.Exit(2)
	}
	name := os.Args[1]
	// Each command parses os.Args[1:]; drop the component name so it sees only its own flags.
	os.Args = append([]string{name}, os.Args[2:]...)
	os.Exit(cli.Run(commands[name]()))
}
