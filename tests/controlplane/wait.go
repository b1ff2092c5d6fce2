package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// runWait waits until the control plane behind a kubeconfig is usable: the kubeconfig exists,
// /readyz is ok, namespace default and its ServiceAccount exist (controller-manager works), and
// at least N fake nodes are Ready without not-ready/unreachable taints (stand-in + node
// lifecycle controller work).
func runWait(args []string) int {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig")
	timeout := fs.Duration("timeout", 60*time.Second, "overall time limit")
	nodes := fs.Int("nodes", 0, "number of Ready schedulable fake nodes to wait for")
	_ = fs.Parse(args)
	start := time.Now()
	deadline := start.Add(*timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	step := func(what string, f func(context.Context) error) error {
		var last error
		for {
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			last = f(rctx)
			rcancel()
			if last == nil {
				logf("wait: %s ok after %s", what, time.Since(start).Round(time.Millisecond))
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not ready after %s: %w", what, *timeout, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "controlplane wait: %v\n", err)
		return 1
	}
	if err := step("kubeconfig "+*kubeconfig, func(context.Context) error {
		_, err := os.Stat(*kubeconfig)
		return err
	}); err != nil {
		return fail(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fail(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	if err := step("/readyz", func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return fail(err)
	}
	if err := step("namespace default and serviceaccount default/default", func(ctx context.Context) error {
		if _, err := client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return fail(err)
	}
	if *nodes > 0 {
		if err := step(fmt.Sprintf("%d schedulable fake nodes", *nodes), func(ctx context.Context) error {
			list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: FakeNodeLabel + "=true"})
			if err != nil {
				return err
			}
			ready := 0
			var notes []string
		nodeLoop:
			for _, n := range list.Items {
				for _, t := range n.Spec.Taints {
					if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
						notes = append(notes, n.Name+" tainted "+t.Key)
						continue nodeLoop
					}
				}
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready++
						continue nodeLoop
					}
				}
				notes = append(notes, n.Name+" not Ready")
			}
			if ready < *nodes {
				return fmt.Errorf("%d of %d nodes ready %v", ready, *nodes, notes)
			}
			return nil
		}); err != nil {
			return fail(err)
		}
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return fail(errors.Join(errors.New("reading /version"), err))
	}
	logf("wait: control plane ready (server %s) after %s", v.GitVersion, time.Since(start).Round(time.Millisecond))
	return 0
}
