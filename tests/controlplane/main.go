// Command controlplane is a multi-call binary for vpa-rs end-to-end tests: embedded etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and a kubelet stand-in,
// all built from the k8s.io/kubernetes module (see go.mod, gen-replace.sh and build.sh).
//
//	controlplane all --dir DIR [--nodes SPEC]   etcd+apiserver+kubelet stand-in in this process,
//	                                           controller-manager and scheduler as child processes;
//	                                           a previous run's DIR restarts it in place
//	controlplane wait --kubeconfig K [--timeout 60s] [--nodes N]
//	controlplane etcd|apiserver|controller-manager|scheduler|kubectl|kubelet ...
//
// It is test tooling only; nothing here is shipped.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // for CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage: controlplane COMMAND [flags]

commands:
  all --dir DIR [--nodes SPEC]    the whole control plane (see scripts/cluster); DIR of a
                                  previous run: restart in place (same ports, certs, etcd data)
  wait --kubeconfig K [--timeout 60s] [--nodes N]
  etcd --data-dir D --port P      embedded etcd on 127.0.0.1
  apiserver ...                   kube-apiserver
  controller-manager ...          kube-controller-manager
  scheduler ...                   kube-scheduler
  kubelet --kubeconfig K --nodes SPEC   kubelet stand-in (fake nodes, pods Running)
  kubectl ...                     kubectl
  version                         print the built Kubernetes version
`

func main() {
	cmd := filepath.Base(os.Args[0])
	args := os.Args[1:]
	switch cmd {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd":
		// called through a symlink: argv[0] selects the component
	default:
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		cmd, args = args[0], args[1:]
	}
	os.Args = append([]string{cmd}, args...)
	switch cmd {
	case "all":
		os.Exit(runAll(args))
	case "wait":
		os.Exit(runWait(args))
	case "etcd":
		os.Exit(runEtcd(args))
	case "kubelet", "kubelet-standin":
		os.Exit(runKubeletStandin(args))
	case "apiserver", "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "controller-manager", "kube-controller-manager":
		os.Exit(cli.Run(kcm.NewControllerManagerCommand()))
	case "scheduler", "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck
		command := kubectl.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
		os.Exit(0)
	case "version", "--version":
		fmt.Println(versionString())
		os.Exit(0)
	case "help", "-h", "--help":
		fmt.Print(usage)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}
