// Command rbacagg runs Kubernetes' own ClusterRole aggregation controller
// (k8s.io/kubernetes/pkg/controller/clusterroleaggregation, the one kube-controller-manager runs)
// against an API server, so that the aggregationRule of the built-in view/edit/admin roles picks up
// ClusterRoles labelled rbac.authorization.k8s.io/aggregate-to-*. The test harness has no
// kube-controller-manager; tests/rbac starts this next to it. Runs until SIGTERM/SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a user allowed to update ClusterRoles")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		os.Exit(2)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(cs, 0)
	c := clusterroleaggregation.NewClusterRoleAggregation(factory.Rbac().V1().ClusterRoles(), cs.RbacV1())
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)
	fmt.Println("rbacagg: running")
	<-ctx.Done()
}
