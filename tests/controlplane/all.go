package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// DefaultNodes: two roomy nodes and one small node for "not enough allocatable" tests.
const DefaultNodes = "vpa-node-1:8:32Gi:110,vpa-node-2:8:32Gi:110,vpa-node-small:1:2Gi:110"

func versionString() string {
	return version.Get().GitVersion
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "controlplane: "+time.Now().UTC().Format("15:04:05.000")+" "+format+"\n", a...)
}

// freePorts reserves n distinct loopback ports by listening on :0, then releases them.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startEtcd(dataDir string, clientPort, peerPort int, logFile string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "vpa-e2e"
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	if logFile != "" {
		cfg.LogOutputs = []string{logFile}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, errors.New("etcd did not become ready within 60s")
	}
}

func runEtcd(args []string) int {
	fs := flag.NewFlagSet("etcd", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "data directory (required)")
	port := fs.Int("port", 2379, "client port on 127.0.0.1")
	peerPort := fs.Int("peer-port", 0, "peer port on 127.0.0.1 (0: client port + 1)")
	_ = fs.Parse(args)
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir is required")
		return 2
	}
	if *peerPort == 0 {
		*peerPort = *port + 1
	}
	e, err := startEtcd(*dataDir, *port, *peerPort, "")
	if err != nil {
		logf("%v", err)
		return 1
	}
	logf("etcd ready on http://127.0.0.1:%d", *port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-e.Err():
		logf("etcd: %v", err)
	}
	e.Close()
	return 0
}

type child struct {
	name string
	cmd  *exec.Cmd
}

func startChild(dir, name string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	// The children die with us even if we are SIGKILLed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	_ = f.Close()
	logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return &child{name: name, cmd: cmd}, nil
}

// portNames are the keys of DIR/ports, in the order runAll uses them.
var portNames = []string{"etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler"}

// readPorts reads DIR/ports as a previous run wrote it: nil (and no error) when the file does
// not exist; an error when it exists but lacks a port.
func readPorts(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byName := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("bad port %q for %s", v, k)
		}
		byName[k] = n
	}
	ports := make([]int, 0, len(portNames))
	for _, name := range portNames {
		n, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("no port for %s", name)
		}
		ports = append(ports, n)
	}
	return ports, nil
}

func writePorts(path string, ports []int) error {
	var b strings.Builder
	for i, name := range portNames {
		fmt.Fprintf(&b, "%s=%d\n", name, ports[i])
	}
	tmp := path + ".tmp"
	if err := writeFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// runAll starts the whole control plane and blocks until SIGTERM/SIGINT.
//
// Layout of DIR: pki/ (certs), etcd/ (data), logs/, kubeconfig (admin, written last, once the
// apiserver is ready), ports, pids.
//
// Restart in place: started again with the DIR of a previous run (stopped by SIGTERM or killed),
// it reuses that run's certificates (pki/, when complete), ports (DIR/ports) and etcd data, so
// the API server comes back on the same URL, with the same CA, client certificate and objects.
// A fresh (or empty) DIR gets new certificates and free ports, as before.
func runAll(args []string) int {
	fs := flag.NewFlagSet("all", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (required): fresh, or a previous run's to restart in place")
	nodes := fs.String("nodes", DefaultNodes, "fake nodes: name:cpu:memory:pods,...  (empty: none)")
	featureGates := fs.String("feature-gates", "", "extra --feature-gates for apiserver, controller-manager and scheduler")
	verbosity := fs.Int("v", 0, "klog verbosity of the components")
	noKCM := fs.Bool("no-controller-manager", false, "do not start kube-controller-manager")
	noScheduler := fs.Bool("no-scheduler", false, "do not start kube-scheduler")
	_ = fs.Parse(args)
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "all: --dir is required")
		return 2
	}
	for _, d := range []string{"logs", "pki"} {
		if err := os.MkdirAll(filepath.Join(*dir, d), 0o700); err != nil {
			logf("%v", err)
			return 1
		}
	}
	start := time.Now()
	pkiDir := filepath.Join(*dir, "pki")
	// A DIR from a previous run (restart in place) keeps its certificates, ports and etcd data,
	// so the API server comes back on the same URL with the same CA and objects.
	p, ca, admin, reused, err := loadPKI(pkiDir)
	if err != nil {
		logf("loading the certificates of the previous run: %v", err)
		return 1
	}
	if reused {
		logf("reusing the certificates in %s", pkiDir)
	} else if p, ca, admin, err = generatePKI(pkiDir); err != nil {
		logf("generating certificates: %v", err)
		return 1
	}
	portsPath := filepath.Join(*dir, "ports")
	ports, err := readPorts(portsPath)
	if err != nil {
		logf("reading %s: %v", portsPath, err)
		return 1
	}
	if ports != nil {
		logf("reusing the ports of the previous run (%s)", portsPath)
	} else if ports, err = freePorts(len(portNames)); err != nil {
		logf("picking ports: %v", err)
		return 1
	}
	etcdPort, etcdPeer, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	if err := writePorts(portsPath, ports); err != nil {
		logf("writing %s: %v", portsPath, err)
		return 1
	}

	e, err := startEtcd(filepath.Join(*dir, "etcd"), etcdPort, etcdPeer, filepath.Join(*dir, "logs", "etcd.log"))
	if err != nil {
		logf("%v", err)
		return 1
	}
	logf("etcd ready on 127.0.0.1:%d after %s", etcdPort, time.Since(start).Round(time.Millisecond))

	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	// Components use this kubeconfig; the public one (DIR/kubeconfig) is written once ready.
	internalKubeconfig := filepath.Join(*dir, "pki", "admin.kubeconfig")
	if err := writeKubeconfig(internalKubeconfig, server, ca, admin, "vpa-e2e-admin"); err != nil {
		logf("%v", err)
		return 1
	}

	apiArgs := []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + pkiDir,
		"--tls-cert-file=" + p.path("apiserver.crt"),
		"--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--authorization-mode=RBAC,Node",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--requestheader-client-ca-file=" + p.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.path("front-proxy-client.crt"),
		"--proxy-client-key-file=" + p.path("front-proxy-client.key"),
		// The default/kubernetes Endpoints would point at 127.0.0.1, which validation rejects.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=" + strconv.Itoa(*verbosity),
	}
	if *featureGates != "" {
		apiArgs = append(apiArgs, "--feature-gates="+*featureGates)
	}
	apiCmd := apiserver.NewAPIServerCommand()
	apiCmd.SetArgs(apiArgs)
	apiDone := make(chan error, 1)
	go func() { apiDone <- apiCmd.Execute() }()

	// Our own signal channel (the apiserver registers its own handler too).
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	restCfg, err := clientcmd.BuildConfigFromFlags("", internalKubeconfig)
	if err != nil {
		logf("%v", err)
		return 1
	}
	restCfg.QPS, restCfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		logf("%v", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Wait for the apiserver's /readyz.
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for {
		select {
		case err := <-apiDone:
			logf("kube-apiserver exited during start-up: %v", err)
			e.Close()
			return 1
		case <-sig:
			logf("interrupted during start-up")
			e.Close()
			return 1
		default:
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		rcancel()
		if lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			logf("kube-apiserver not ready after 60s: %v", lastErr)
			e.Close()
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("kube-apiserver %s ready on %s after %s", versionString(), server, time.Since(start).Round(time.Millisecond))

	var children []*child
	var mu sync.Mutex
	stopChildren := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range children {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() {
			for _, c := range children {
				_ = c.cmd.Wait()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			for _, c := range children {
				_ = c.cmd.Process.Kill()
			}
			<-done
		}
		children = nil
	}
	fail := func(format string, a ...any) int {
		logf(format, a...)
		stopChildren()
		e.Close()
		return 1
	}

	fg := []string{}
	if *featureGates != "" {
		fg = append(fg, "--feature-gates="+*featureGates)
	}
	if !*noKCM {
		c, err := startChild(*dir, "controller-manager", append([]string{"controller-manager",
			"--kubeconfig=" + internalKubeconfig,
			"--authentication-kubeconfig=" + internalKubeconfig,
			"--authorization-kubeconfig=" + internalKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(kcmPort),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + p.path("sa.key"),
			"--root-ca-file=" + p.path("ca.crt"),
			"--cluster-signing-cert-file=" + p.path("ca.crt"),
			"--cluster-signing-key-file=" + p.path("ca.key"),
			"--allocate-node-cidrs=false",
			// Otherwise it creates /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host.
			"--flex-volume-plugin-dir=" + filepath.Join(*dir, "flexvolume"),
			"--controllers=*",
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--profiling=false",
			"--v=" + strconv.Itoa(*verbosity),
		}, fg...)...)
		if err != nil {
			return fail("starting controller-manager: %v", err)
		}
		mu.Lock()
		children = append(children, c)
		mu.Unlock()
	}
	if !*noScheduler {
		c, err := startChild(*dir, "scheduler", append([]string{"scheduler",
			"--kubeconfig=" + internalKubeconfig,
			"--authentication-kubeconfig=" + internalKubeconfig,
			"--authorization-kubeconfig=" + internalKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(schedPort),
			"--leader-elect=false",
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--profiling=false",
			"--v=" + strconv.Itoa(*verbosity),
		}, fg...)...)
		if err != nil {
			return fail("starting scheduler: %v", err)
		}
		mu.Lock()
		children = append(children, c)
		mu.Unlock()
	}
	var pids []string
	pids = append(pids, fmt.Sprintf("all=%d", os.Getpid()))
	for _, c := range children {
		pids = append(pids, fmt.Sprintf("%s=%d", c.name, c.cmd.Process.Pid))
	}
	_ = writeFile(filepath.Join(*dir, "pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o644)

	// Children that die unexpectedly are reported (and make `wait` fail through the logs).
	childDied := make(chan string, 4)
	for _, c := range children {
		go func(c *child) {
			state, _ := c.cmd.Process.Wait()
			select {
			case childDied <- fmt.Sprintf("%s exited: %v", c.name, state):
			default:
			}
		}(c)
	}

	specs, err := parseNodeSpecs(*nodes)
	if err != nil {
		return fail("%v", err)
	}
	standin := newStandin(client, specs)
	go func() {
		if err := standin.run(ctx); err != nil && ctx.Err() == nil {
			logf("kubelet stand-in stopped: %v", err)
		}
	}()

	if err := writeKubeconfig(filepath.Join(*dir, "kubeconfig"), server, ca, admin, "vpa-e2e-admin"); err != nil {
		return fail("%v", err)
	}
	logf("control plane started in %s; kubeconfig %s", time.Since(start).Round(time.Millisecond), filepath.Join(*dir, "kubeconfig"))

	code := 0
	select {
	case s := <-sig:
		logf("received %v, shutting down", s)
	case err := <-apiDone:
		logf("kube-apiserver exited: %v", err)
		code = 1
	case msg := <-childDied:
		logf("%s; shutting down", msg)
		code = 1
	case <-e.Err():
		logf("etcd failed; shutting down")
		code = 1
	}
	cancel()
	stopChildren()
	// The apiserver stops on the same signal; give it a moment, then close etcd and leave.
	select {
	case <-apiDone:
	case <-time.After(3 * time.Second):
	}
	etcdClosed := make(chan struct{})
	go func() { e.Close(); close(etcdClosed) }()
	select {
	case <-etcdClosed:
	case <-time.After(3 * time.Second):
	}
	logf("stopped")
	return code
}
