package main

// The replay: rows are fed, in file order, through upstream's own model (ContainerState,
// AggregateContainerState) and, at each emission point, through upstream's per-VPA
// recommendation path (AggregateStateByContainerName, UpdateFromPolicy, the pod resource
// recommender, MapToListOfRecommendedContainerResources, ApplyVPAPolicy).

import (
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	vpa_types "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/logic"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/model"
	vpa_utils "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/utils/vpa"
)

// Settings shape a replay.
type Settings struct {
	Recommender      logic.PodResourceRecommender
	Format           logic.RecommendationFormat
	GlobalMaxAllowed corev1.ResourceList
	Every            time.Duration // 0: only at the end
}

// Stats count what the replay saw.
type Stats struct {
	Rows, CPUSamples, MemorySamples, RejectedSamples, OOMs, RejectedOOMs int64
}

type workload struct {
	namespace, name string
	// container name -> the workload's aggregate for that name
	containers map[string]*model.AggregateContainerState
}

// aggregateKey is a model.AggregateStateKey: all pods of a workload share one (empty) label set.
type aggregateKey struct{ namespace, container string }

func (k aggregateKey) Namespace() string     { return k.namespace }
func (k aggregateKey) ContainerName() string { return k.container }
func (k aggregateKey) Labels() labels.Labels { return labels.Set{} }

// Replay is the replay state machine.
type Replay struct {
	settings   Settings
	containers map[string]*model.ContainerState // key: "namespace,workload,pod,container"
	workloads  map[[2]string]*workload
	sorted     []*workload // sorted by (namespace, name); rebuilt when a workload is added
	dirty      bool
	clock      time.Time
	hasClock   bool
	nextPoint  time.Time
	hasPoint   bool
	stats      Stats
	out        *Output
	emitted    int64
	scratch    []byte
}

// NewReplay creates a replay writing recommendations to out.
func NewReplay(settings Settings, out *Output) *Replay {
	return &Replay{
		settings:   settings,
		containers: make(map[string]*model.ContainerState),
		workloads:  make(map[[2]string]*workload),
		out:        out,
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// firstMultipleAfter is the smallest multiple of every (from the Unix epoch) strictly after t.
func firstMultipleAfter(t time.Time, every time.Duration) time.Time {
	e := int64(every)
	n := t.UnixNano()
	q := floorDiv(n, e) + 1
	if q > math.MaxInt64/e {
		return time.Unix(0, math.MaxInt64).UTC()
	}
	return time.Unix(0, q*e).UTC()
}

func addSaturating(t time.Time, d time.Duration) time.Time {
	n := t.UnixNano()
	if n > math.MaxInt64-int64(d) {
		return time.Unix(0, math.MaxInt64).UTC()
	}
	return time.Unix(0, n+int64(d)).UTC()
}

func (r *Replay) advancePoints(ts time.Time) {
	if r.settings.Every <= 0 {
		return
	}
	if !r.hasPoint && !r.hasClock {
		r.nextPoint = firstMultipleAfter(ts, r.settings.Every)
		r.hasPoint = true
		return
	}
	for ts.After(r.nextPoint) {
		r.emit(r.nextPoint)
		r.nextPoint = addSaturating(r.nextPoint, r.settings.Every)
	}
}

// Feed applies one row.
func (r *Replay) Feed(row *Row) {
	ts := row.Time
	r.advancePoints(ts)
	if !r.hasClock || ts.After(r.clock) {
		r.clock, r.hasClock = ts, true
	}
	r.stats.Rows++

	container, ok := r.containers[string(row.Key)]
	if !ok {
		container = r.newContainer(row)
	}
	if row.IsOOM {
		if err := container.RecordOOM(ts, model.ResourceAmount(row.Memory)); err != nil {
			r.stats.RejectedOOMs++
		} else {
			r.stats.OOMs++
		}
		return
	}
	if row.HasCPU {
		s := model.ContainerUsageSample{MeasureStart: ts, Usage: model.ResourceAmount(row.CPUMilli), Resource: model.ResourceCPU}
		if container.AddSample(&s) {
			r.stats.CPUSamples++
		} else {
			r.stats.RejectedSamples++
		}
	}
	if row.HasMemory {
		s := model.ContainerUsageSample{MeasureStart: ts, Usage: model.ResourceAmount(row.Memory), Resource: model.ResourceMemory}
		if container.AddSample(&s) {
			r.stats.MemorySamples++
		} else {
			r.stats.RejectedSamples++
		}
	}
}

func (r *Replay) newContainer(row *Row) *model.ContainerState {
	wk := [2]string{string(row.Namespace), string(row.Workload)}
	w, ok := r.workloads[wk]
	if !ok {
		w = &workload{namespace: wk[0], name: wk[1], containers: make(map[string]*model.AggregateContainerState)}
		r.workloads[wk] = w
		r.dirty = true
	}
	name := string(row.Container)
	agg, ok := w.containers[name]
	if !ok {
		agg = model.NewAggregateContainerState()
		w.containers[name] = agg
	}
	c := model.NewContainerState(model.Resources{}, agg)
	r.containers[string(row.Key)] = c
	return c
}

// recommend runs upstream's per-VPA recommendation path for one workload.
func (r *Replay) recommend(w *workload) *vpa_types.RecommendedPodResources {
	// routines.GetContainerNameToAggregateStateMap: merge the linked aggregations by container
	// name into fresh states (model.AggregateStateByContainerName), then UpdateFromPolicy with
	// the (absent) container policy.
	linked := make(map[model.AggregateStateKey]*model.AggregateContainerState, len(w.containers))
	for name, agg := range w.containers {
		linked[aggregateKey{w.namespace, name}] = agg
	}
	byName := model.AggregateStateByContainerName(linked)
	for _, state := range byName {
		state.UpdateFromPolicy(nil)
	}
	resources := r.settings.Recommender.GetRecommendedPodResources(byName)
	list := logic.MapToListOfRecommendedContainerResources(resources, r.settings.Format)
	// routines.cappingPostProcessor.Process with no VPA resource policy.
	capped, err := vpa_utils.ApplyVPAPolicy(list, nil, r.settings.GlobalMaxAllowed)
	if err != nil {
		return list
	}
	return capped
}

func (r *Replay) emit(at time.Time) {
	if r.dirty {
		r.sorted = r.sorted[:0]
		for _, w := range r.workloads {
			r.sorted = append(r.sorted, w)
		}
		sort.Slice(r.sorted, func(i, j int) bool {
			a, b := r.sorted[i], r.sorted[j]
			if a.namespace != b.namespace {
				return a.namespace < b.namespace
			}
			return a.name < b.name
		})
		r.dirty = false
	}
	timeStr := at.UTC().Format(time.RFC3339Nano)
	for _, w := range r.sorted {
		rec := r.recommend(w)
		if rec == nil {
			continue
		}
		for i := range rec.ContainerRecommendations {
			r.writeRecommendation(timeStr, w, &rec.ContainerRecommendations[i])
		}
	}
}

// Finish emits the remaining points and the end of the trace.
func (r *Replay) Finish() {
	if !r.hasClock {
		return
	}
	lastEmitted, hasLast := time.Time{}, false
	if r.settings.Every > 0 {
		for r.hasPoint && !r.nextPoint.After(r.clock) {
			r.emit(r.nextPoint)
			lastEmitted, hasLast = r.nextPoint, true
			r.nextPoint = addSaturating(r.nextPoint, r.settings.Every)
		}
	}
	if !hasLast || !lastEmitted.Equal(r.clock) {
		r.emit(r.clock)
	}
}

func (r *Replay) writeRecommendation(timeStr string, w *workload, c *vpa_types.RecommendedContainerResources) {
	b := r.scratch[:0]
	if r.emitted > 0 {
		b = append(b, ",\n"...)
	} else {
		b = append(b, '\n')
	}
	r.emitted++
	b = append(b, `{"time":`...)
	b = appendJSONString(b, timeStr)
	b = append(b, `,"namespace":`...)
	b = appendJSONString(b, w.namespace)
	b = append(b, `,"workload":`...)
	b = appendJSONString(b, w.name)
	b = append(b, `,"container":`...)
	b = appendJSONString(b, c.ContainerName)
	b = append(b, `,"target":`...)
	b = appendResourceList(b, c.Target)
	b = append(b, `,"lowerBound":`...)
	b = appendResourceList(b, c.LowerBound)
	b = append(b, `,"upperBound":`...)
	b = appendResourceList(b, c.UpperBound)
	b = append(b, `,"uncappedTarget":`...)
	b = appendResourceList(b, c.UncappedTarget)
	b = append(b, '}')
	r.scratch = b
	r.out.Write(b)
}

func appendResourceList(b []byte, rl corev1.ResourceList) []byte {
	b = append(b, '{')
	first := true
	// cpu and memory first, in that order; anything else (never produced) after, sorted.
	names := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	var extra []string
	for n := range rl {
		if n != corev1.ResourceCPU && n != corev1.ResourceMemory {
			extra = append(extra, string(n))
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		names = append(names, corev1.ResourceName(e))
	}
	for _, n := range names {
		q, ok := rl[n]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, string(n))
		b = append(b, ':')
		b = appendJSONString(b, q.String())
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b = append(b, '\\', '"')
			case c == '\\':
				b = append(b, '\\', '\\')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b = append(b, s[i:i+size]...)
		i += size
	}
	return append(b, '"')
}

func (s Stats) appendJSON(b []byte) []byte {
	b = append(b, `{"rows":`...)
	b = strconv.AppendInt(b, s.Rows, 10)
	b = append(b, `,"cpuSamples":`...)
	b = strconv.AppendInt(b, s.CPUSamples, 10)
	b = append(b, `,"memorySamples":`...)
	b = strconv.AppendInt(b, s.MemorySamples, 10)
	b = append(b, `,"rejectedSamples":`...)
	b = strconv.AppendInt(b, s.RejectedSamples, 10)
	b = append(b, `,"ooms":`...)
	b = strconv.AppendInt(b, s.OOMs, 10)
	b = append(b, `,"rejectedOoms":`...)
	b = strconv.AppendInt(b, s.RejectedOOMs, 10)
	return append(b, '}')
}
