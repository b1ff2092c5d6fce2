package main

// A kubelet stand-in: registers fake Nodes (with capacity/allocatable, Ready, a node Lease that
// is renewed) and makes pods bound to them behave like real ones: phase Running, conditions,
// container statuses (ready, started, running.startedAt, resources/allocatedResources mirroring
// the spec), in-place resize (pods/resize) applied when the node has room, and pods with a
// deletionTimestamp removed at once (grace 0) so evictions and namespace deletion complete.

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// FakeNodeLabel marks nodes managed by the stand-in.
const FakeNodeLabel = "vpa-rs.test/fake-node"

type nodeSpec struct {
	name   string
	cpu    resource.Quantity
	memory resource.Quantity
	pods   resource.Quantity
	index  int
}

// parseNodeSpecs parses "name:cpu:memory:pods,...".
func parseNodeSpecs(s string) ([]nodeSpec, error) {
	var out []nodeSpec
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("bad node spec %q: want name:cpu:memory[:pods]", part)
		}
		n := nodeSpec{name: f[0], index: i + 1}
		var err error
		if n.cpu, err = resource.ParseQuantity(f[1]); err != nil {
			return nil, fmt.Errorf("bad cpu in node spec %q: %w", part, err)
		}
		if n.memory, err = resource.ParseQuantity(f[2]); err != nil {
			return nil, fmt.Errorf("bad memory in node spec %q: %w", part, err)
		}
		n.pods = resource.MustParse("110")
		if len(f) == 4 {
			if n.pods, err = resource.ParseQuantity(f[3]); err != nil {
				return nil, fmt.Errorf("bad pods in node spec %q: %w", part, err)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

type standin struct {
	client    kubernetes.Interface
	nodes     map[string]nodeSpec
	order     []nodeSpec
	podLister corelisters.PodLister
	queue     workqueue.TypedRateLimitingInterface[string]
}

func newStandin(client kubernetes.Interface, specs []nodeSpec) *standin {
	s := &standin{client: client, nodes: map[string]nodeSpec{}, order: specs}
	for _, n := range specs {
		s.nodes[n.name] = n
	}
	return s
}

func runKubeletStandin(args []string) int {
	fs := flag.NewFlagSet("kubelet", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig")
	nodes := fs.String("nodes", DefaultNodes, "fake nodes: name:cpu:memory:pods,...")
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logf("%v", err)
		return 1
	}
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		logf("%v", err)
		return 1
	}
	specs, err := parseNodeSpecs(*nodes)
	if err != nil {
		logf("%v", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := newStandin(client, specs).run(ctx); err != nil && ctx.Err() == nil {
		logf("kubelet stand-in: %v", err)
		return 1
	}
	return 0
}

func (s *standin) run(ctx context.Context) error {
	for _, n := range s.order {
		if err := s.registerNode(ctx, n); err != nil {
			return fmt.Errorf("registering node %s: %w", n.name, err)
		}
	}
	logf("kubelet stand-in: registered %d fake nodes", len(s.order))
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for _, n := range s.order {
			if err := s.heartbeat(ctx, n); err != nil && ctx.Err() == nil {
				logf("kubelet stand-in: heartbeat %s: %v", n.name, err)
			}
		}
	}, 10*time.Second)

	factory := informers.NewSharedInformerFactory(s.client, 0)
	podInformer := factory.Core().V1().Pods()
	s.podLister = podInformer.Lister()
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](20*time.Millisecond, 5*time.Second),
		),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubelet-standin"})
	enqueue := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				pod, ok = tomb.Obj.(*corev1.Pod)
				if !ok {
					return
				}
			} else {
				return
			}
		}
		if _, ours := s.nodes[pod.Spec.NodeName]; !ours {
			return
		}
		key, err := cache.MetaNamespaceKeyFunc(pod)
		if err == nil {
			s.queue.Add(key)
		}
		// A change of one pod can free room for a deferred resize of another on the node.
		if pod.DeletionTimestamp != nil {
			s.enqueueResizePending(pod.Spec.NodeName)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				s.enqueueResizePending(pod.Spec.NodeName)
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	defer s.queue.ShutDown()
	for range 4 {
		go func() {
			for s.processNext(ctx) {
			}
		}()
	}
	// Retry deferred resizes now and then.
	go wait.UntilWithContext(ctx, func(context.Context) {
		for _, n := range s.order {
			s.enqueueResizePending(n.name)
		}
	}, 5*time.Second)
	<-ctx.Done()
	return nil
}

func (s *standin) enqueueResizePending(node string) {
	if s.podLister == nil || s.queue == nil {
		return
	}
	pods, err := s.podLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if p.Spec.NodeName != node {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodResizePending {
				if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
					s.queue.Add(key)
				}
			}
		}
	}
}

func (s *standin) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	if err := s.syncPod(ctx, key); err != nil {
		if ctx.Err() != nil {
			return false
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			logf("kubelet stand-in: %s: %v", key, err)
		}
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	return true
}

func nodeIP(n nodeSpec) string { return fmt.Sprintf("10.254.0.%d", n.index) }

func (s *standin) registerNode(ctx context.Context, n nodeSpec) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				FakeNodeLabel:            "true",
				"type":                   "kwok", // what kwok-based setups select on
				"kubernetes.io/hostname": n.name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"},
		},
	}
	_, err := s.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return s.heartbeat(ctx, n)
}

func (s *standin) heartbeat(ctx context.Context, n nodeSpec) error {
	now := metav1.Now()
	node, err := s.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	rl := corev1.ResourceList{
		corev1.ResourceCPU:              n.cpu,
		corev1.ResourceMemory:           n.memory,
		corev1.ResourcePods:             n.pods,
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	node.Status.Capacity = rl
	node.Status.Allocatable = rl.DeepCopy()
	node.Status.Phase = corev1.NodeRunning
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: nodeIP(n)},
		{Type: corev1.NodeHostName, Address: n.name},
	}
	node.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		MachineID: n.name, SystemUUID: n.name, BootID: n.name,
		KernelVersion: "6.1.0-fake", OSImage: "vpa-rs fake node", ContainerRuntimeVersion: "fake://1.0.0",
		KubeletVersion: versionString(), KubeProxyVersion: versionString(),
		OperatingSystem: "linux", Architecture: "amd64",
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet stand-in is posting ready status"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated"},
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		for _, old := range node.Status.Conditions {
			if old.Type == conds[i].Type && old.Status == conds[i].Status && !old.LastTransitionTime.IsZero() {
				conds[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status.Conditions = conds
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return s.renewLease(ctx, node)
}

func (s *standin) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, node.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: node.Name,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(node.Name),
				LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(node.Name)
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func podIP(pod *corev1.Pod, n nodeSpec) string {
	h := sha256.Sum256([]byte(pod.Namespace + "/" + pod.Name + "/" + string(pod.UID)))
	return fmt.Sprintf("10.%d.%d.%d", 200+n.index, h[0], 1+int(h[1])%253)
}

// cpuMem keeps only cpu and memory (what the kubelet reports in container status resources).
func cpuMem(rl corev1.ResourceList) corev1.ResourceList {
	if rl == nil {
		return nil
	}
	out := corev1.ResourceList{}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := rl[name]; ok {
			out[name] = q.DeepCopy()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func specResources(c *corev1.Container) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{Requests: cpuMem(c.Resources.Requests), Limits: cpuMem(c.Resources.Limits)}
}

func sameResources(a, b *corev1.ResourceRequirements) bool {
	if a == nil || b == nil {
		return a == b
	}
	return quantitiesEqual(a.Requests, b.Requests) && quantitiesEqual(a.Limits, b.Limits)
}

func quantitiesEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, qa := range a {
		qb, ok := b[k]
		if !ok || qa.Cmp(qb) != 0 {
			return false
		}
	}
	return true
}

// podRequests sums cpu/memory requests of a pod, using the actual (status) resources when set.
func podRequests(pod *corev1.Pod, override map[string]*corev1.ResourceRequirements) (cpu, mem int64) {
	actual := map[string]*corev1.ResourceRequirements{}
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Resources != nil {
			actual[cs.Name] = cs.Resources
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		r := specResources(c)
		if a, ok := actual[c.Name]; ok {
			r = a
		}
		if o, ok := override[c.Name]; ok {
			r = o
		}
		if q, ok := r.Requests[corev1.ResourceCPU]; ok {
			cpu += q.MilliValue()
		}
		if q, ok := r.Requests[corev1.ResourceMemory]; ok {
			mem += q.Value()
		}
	}
	return cpu, mem
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func (s *standin) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := s.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	n, ours := s.nodes[pod.Spec.NodeName]
	if !ours {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		err := s.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if isTerminal(pod) {
		return nil
	}
	desired, err := s.desiredStatus(pod, n)
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(&pod.Status, desired) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = *desired
	_, err = s.client.CoreV1().Pods(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string, gen int64, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type == t {
			if c.Status != status {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message, c.ObservedGeneration = status, reason, msg, gen
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now, ObservedGeneration: gen,
	})
}

func removeCondition(st *corev1.PodStatus, t corev1.PodConditionType) {
	out := st.Conditions[:0]
	for _, c := range st.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	st.Conditions = out
}

func (s *standin) desiredStatus(pod *corev1.Pod, n nodeSpec) (*corev1.PodStatus, error) {
	if pod == nil {
		return nil, errors.New("no pod")
	}
	st := pod.Status.DeepCopy()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	gen := pod.Generation
	st.Phase = corev1.PodRunning
	if st.StartTime == nil {
		st.StartTime = &now
	}
	st.HostIP = nodeIP(n)
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	if st.PodIP == "" {
		if pod.Spec.HostNetwork {
			st.PodIP = st.HostIP
		} else {
			st.PodIP = podIP(pod, n)
		}
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	st.ObservedGeneration = gen

	// In-place resize: apply the spec when the node has room, else report PodResizePending.
	existing := map[string]*corev1.ContainerStatus{}
	for i := range st.ContainerStatuses {
		existing[st.ContainerStatuses[i].Name] = &st.ContainerStatuses[i]
	}
	want := map[string]*corev1.ResourceRequirements{}
	resizeNeeded := false
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		w := specResources(c)
		want[c.Name] = w
		if old, ok := existing[c.Name]; ok && old.Resources != nil && !sameResources(old.Resources, w) {
			resizeNeeded = true
		}
	}
	apply := true
	if resizeNeeded {
		cpu, mem := podRequests(pod, want)
		allocCPU, allocMem := n.cpu.MilliValue(), n.memory.Value()
		if cpu > allocCPU || mem > allocMem {
			apply = false
			setCondition(st, corev1.PodResizePending, corev1.ConditionTrue, corev1.PodReasonInfeasible,
				fmt.Sprintf("Node didn't have enough capacity: requested cpu %dm memory %d, capacity cpu %dm memory %d", cpu, mem, allocCPU, allocMem), gen, now)
		} else {
			usedCPU, usedMem := int64(0), int64(0)
			others, _ := s.podLister.List(labels.Everything())
			for _, o := range others {
				if o.Spec.NodeName != n.name || o.UID == pod.UID || isTerminal(o) {
					continue
				}
				c, m := podRequests(o, nil)
				usedCPU += c
				usedMem += m
			}
			if usedCPU+cpu > allocCPU || usedMem+mem > allocMem {
				apply = false
				setCondition(st, corev1.PodResizePending, corev1.ConditionTrue, corev1.PodReasonDeferred,
					fmt.Sprintf("Node didn't have enough resource: cpu requested %dm, free %dm; memory requested %d, free %d", cpu, allocCPU-usedCPU, mem, allocMem-usedMem), gen, now)
			}
		}
	}
	if apply {
		removeCondition(st, corev1.PodResizePending)
		removeCondition(st, corev1.PodResizeInProgress)
	}

	statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := corev1.ContainerStatus{Name: c.Name}
		if old, ok := existing[c.Name]; ok {
			cs = *old.DeepCopy()
		}
		cs.Image = c.Image
		if cs.ImageID == "" {
			cs.ImageID = "fake://" + c.Image
		}
		if cs.ContainerID == "" {
			cs.ContainerID = fmt.Sprintf("fake://%s-%s", pod.UID, c.Name)
		}
		if cs.State.Running == nil {
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		cs.Ready = true
		cs.Started = ptr.To(true)
		if cs.Resources == nil || apply {
			cs.Resources = want[c.Name]
		}
		cs.AllocatedResources = cs.Resources.Requests.DeepCopy()
		statuses = append(statuses, cs)
	}
	st.ContainerStatuses = statuses

	oldInit := map[string]*corev1.ContainerStatus{}
	for i := range st.InitContainerStatuses {
		oldInit[st.InitContainerStatuses[i].Name] = &st.InitContainerStatuses[i]
	}
	var inits []corev1.ContainerStatus
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := corev1.ContainerStatus{Name: c.Name}
		if old, ok := oldInit[c.Name]; ok {
			cs = *old.DeepCopy()
		}
		cs.Image = c.Image
		if cs.ImageID == "" {
			cs.ImageID = "fake://" + c.Image
		}
		if cs.ContainerID == "" {
			cs.ContainerID = fmt.Sprintf("fake://%s-%s", pod.UID, c.Name)
		}
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if sidecar {
			if cs.State.Running == nil {
				cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
			}
			cs.Started = ptr.To(true)
		} else if cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
			}}
			cs.Started = ptr.To(false)
		}
		cs.Ready = true
		cs.Resources = specResources(c)
		cs.AllocatedResources = cs.Resources.Requests.DeepCopy()
		inits = append(inits, cs)
	}
	st.InitContainerStatuses = inits

	setCondition(st, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "", gen, now)
	setCondition(st, corev1.PodInitialized, corev1.ConditionTrue, "", "", gen, now)
	setCondition(st, corev1.ContainersReady, corev1.ConditionTrue, "", "", gen, now)
	setCondition(st, corev1.PodReady, corev1.ConditionTrue, "", "", gen, now)
	setCondition(st, corev1.PodScheduled, corev1.ConditionTrue, "", "", gen, now)
	// Keep the relative order stable so DeepEqual does not flap.
	order := map[corev1.PodConditionType]int{
		corev1.PodReadyToStartContainers: 0, corev1.PodInitialized: 1, corev1.ContainersReady: 2,
		corev1.PodReady: 3, corev1.PodScheduled: 4, corev1.PodResizePending: 5, corev1.PodResizeInProgress: 6,
	}
	sortConditions(st.Conditions, order)
	// If nothing but timestamps would change, keep the old status (no write).
	if statusEqualIgnoringTimes(&pod.Status, st) {
		return &pod.Status, nil
	}
	return st, nil
}

func sortConditions(c []corev1.PodCondition, order map[corev1.PodConditionType]int) {
	rank := func(t corev1.PodConditionType) int {
		if r, ok := order[t]; ok {
			return r
		}
		return 100
	}
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && rank(c[j-1].Type) > rank(c[j].Type); j-- {
			c[j-1], c[j] = c[j], c[j-1]
		}
	}
}

func statusEqualIgnoringTimes(a, b *corev1.PodStatus) bool {
	strip := func(s *corev1.PodStatus) *corev1.PodStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
			s.Conditions[i].LastProbeTime = metav1.Time{}
		}
		return s
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}
