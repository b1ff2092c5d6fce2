package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/logic"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/model"
)

type result struct {
	Recommendations []struct {
		Time           string            `json:"time"`
		Namespace      string            `json:"namespace"`
		Workload       string            `json:"workload"`
		Container      string            `json:"container"`
		Target         map[string]string `json:"target"`
		LowerBound     map[string]string `json:"lowerBound"`
		UpperBound     map[string]string `json:"upperBound"`
		UncappedTarget map[string]string `json:"uncappedTarget"`
	} `json:"recommendations"`
	Stats map[string]int64 `json:"stats"`
}

func defaultSettings(every time.Duration) Settings {
	model.InitializeAggregationsConfig(model.NewAggregationsConfig(
		model.DefaultMemoryAggregationInterval, model.DefaultMemoryAggregationIntervalCount,
		model.DefaultMemoryHistogramDecayHalfLife, model.DefaultCPUHistogramDecayHalfLife,
		model.DefaultOOMBumpUpRatio, model.DefaultOOMMinBumpUp))
	return Settings{
		Recommender: logic.CreatePodResourceRecommender(logic.RecommendationConfig{
			SafetyMarginFraction: 0.15, PodMinCPUMillicores: 25, PodMinMemoryMb: 250,
			TargetCPUPercentile: 0.9, LowerBoundCPUPercentile: 0.5, UpperBoundCPUPercentile: 0.95,
			ConfidenceIntervalCPU:  24 * time.Hour,
			TargetMemoryPercentile: 0.9, LowerBoundMemoryPercentile: 0.5, UpperBoundMemoryPercentile: 0.95,
			ConfidenceIntervalMemory: 24 * time.Hour,
		}),
		Format:           logic.RecommendationFormat{RoundCPUMillicores: 1, RoundMemoryBytes: 1},
		GlobalMaxAllowed: corev1.ResourceList{},
		Every:            every,
	}
}

func replayString(t *testing.T, trace string, s Settings) (result, error) {
	t.Helper()
	out := &Output{}
	stats, err := run(strings.NewReader(trace), s, out)
	if err != nil {
		return result{}, err
	}
	var sb strings.Builder
	sb.WriteString(`{"recommendations":[`)
	if err := out.CopyTo(&sb); err != nil {
		t.Fatal(err)
	}
	sb.WriteString("],\"stats\":")
	sb.Write(stats.appendJSON(nil))
	sb.WriteString("}")
	var r result
	if err := json.Unmarshal([]byte(sb.String()), &r); err != nil {
		t.Fatalf("bad JSON %v:\n%s", err, sb.String())
	}
	return r, nil
}

// The DERIVED worked example of upstream-vpa-behaviour.md §1.8: CPU constant 0.5 core every
// minute for 1440 samples, memory constant 200Mi.
func derivedTrace() string {
	var b strings.Builder
	b.WriteString(Header + "\n")
	start := int64(1_700_000_000 / 60 * 60)
	for i := int64(0); i < 1440; i++ {
		fmt.Fprintf(&b, "%d,ns,web,web-1,app,0.5,200Mi,\n", start+i*60)
	}
	return b.String()
}

func TestDerivedWorkedExample(t *testing.T) {
	r, err := replayString(t, derivedTrace(), defaultSettings(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Recommendations) != 1 {
		t.Fatalf("want 1 recommendation, got %d", len(r.Recommendations))
	}
	got := r.Recommendations[0]
	// What upstream 1.7.1 really prints: 262144000 bytes is "250Mi" (BinarySI canonical form).
	want := map[string]map[string]string{
		"target":         {"cpu": "587m", "memory": "250Mi"},
		"lowerBound":     {"cpu": "585m", "memory": "250Mi"},
		"upperBound":     {"cpu": "1174m", "memory": "496479408"},
		"uncappedTarget": {"cpu": "587m", "memory": "250Mi"},
	}
	check := func(name string, m map[string]string) {
		if fmt.Sprint(m) != fmt.Sprint(want[name]) {
			t.Errorf("%s: got %v, want %v", name, m, want[name])
		}
	}
	check("target", got.Target)
	check("lowerBound", got.LowerBound)
	check("upperBound", got.UpperBound)
	check("uncappedTarget", got.UncappedTarget)
	if got.Time != "2023-11-15T22:12:00Z" {
		t.Errorf("time %s", got.Time)
	}
	wantStats := "map[cpuSamples:1440 memorySamples:1440 ooms:0 rejectedOoms:0 rejectedSamples:0 rows:1440]"
	if fmt.Sprint(r.Stats) != wantStats {
		t.Errorf("stats %v", r.Stats)
	}
}

func TestCappingWithGlobalMax(t *testing.T) {
	s := defaultSettings(0)
	s.GlobalMaxAllowed = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	r, err := replayString(t, derivedTrace(), s)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Recommendations[0]
	if got.UpperBound["cpu"] != "1" || got.Target["cpu"] != "587m" || got.UpperBound["memory"] != "496479408" {
		t.Errorf("capping: %+v", got)
	}
}

func TestEveryEmissionPoints(t *testing.T) {
	var b strings.Builder
	b.WriteString(Header + "\n")
	// 00:30, 01:00 (== a point: no emission before it), 01:00:01, 03:00 (points 02:00 and 03:00
	// are not yet due at 03:00 -> 02:00 emitted before it, 03:00 at the end; no extra final).
	for _, ts := range []string{"1970-01-01T00:30:00Z", "3600", "3601", "1970-01-01T03:00:00+00:00"} {
		fmt.Fprintf(&b, "%s,ns,w,p,c,0.1,100Mi,\n", ts)
	}
	r, err := replayString(t, b.String(), defaultSettings(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var times []string
	for _, e := range r.Recommendations {
		times = append(times, e.Time)
	}
	want := "[1970-01-01T01:00:00Z 1970-01-01T02:00:00Z 1970-01-01T03:00:00Z]"
	if fmt.Sprint(times) != want {
		t.Errorf("times %v, want %s", times, want)
	}

	// A clock that is not on a point gets a final emission; fractional seconds are printed.
	r, err = replayString(t, Header+"\n10,ns,w,p,c,0.1,,\n7200.5,ns,w,p,c,0.1,,\n", defaultSettings(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	times = nil
	for _, e := range r.Recommendations {
		times = append(times, e.Time)
	}
	want = "[1970-01-01T01:00:00Z 1970-01-01T02:00:00Z 1970-01-01T02:00:00.5Z]"
	if fmt.Sprint(times) != want {
		t.Errorf("times %v, want %s", times, want)
	}
}

func TestWorkloadsContainersAndOOM(t *testing.T) {
	trace := Header + "\n" +
		"100,b,w2,p1,z,1,1Gi,\n" +
		"100,a,w1,p1,app,0.5,300Mi,\n" +
		"100,a,w1,p1,sidecar,50m,,\n" +
		"100,a,w1,p1,app,0.5,300Mi,\n" + // duplicate CPU sample: rejected; memory accepted
		"160,a,w1,p2,app,0.7,,\n" +
		"200,a,w1,p1,app,,536870912,oom\n" +
		"1,a,w1,p1,app,,512Mi,oom\n" // older than WindowEnd - 24h: rejected
	r, err := replayString(t, trace, defaultSettings(0))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range r.Recommendations {
		names = append(names, e.Namespace+"/"+e.Workload+"/"+e.Container)
	}
	if fmt.Sprint(names) != "[a/w1/app a/w1/sidecar b/w2/z]" {
		t.Errorf("order %v", names)
	}
	want := "map[cpuSamples:4 memorySamples:3 ooms:1 rejectedOoms:1 rejectedSamples:1 rows:7]"
	if fmt.Sprint(r.Stats) != want {
		t.Errorf("stats %v, want %s", r.Stats, want)
	}
	// OOM at the 512Mi request: max(512Mi+100Mi, 512Mi*1.2) = 644245094 bytes replaces the 300Mi
	// peak of the open window; the two containers of w1 each get half of the pod minimum
	// (12m, 125Mi). A single CPU sample has confidence 0: the upper bound saturates at
	// MaxResourceAmount (1e14 millicores = "100G"; 1e14 bytes = "97656250000Ki").
	want2 := []string{
		"a/w1/app map[cpu:813m memory:764046746] map[cpu:136m memory:125Mi] map[cpu:1171533m memory:1100991360986]",
		"a/w1/sidecar map[cpu:63m memory:125Mi] map[cpu:12m memory:125Mi] map[cpu:100G memory:125Mi]",
		"b/w2/z map[cpu:1168m memory:1238659775] map[cpu:25m memory:250Mi] map[cpu:100G memory:97656250000Ki]",
	}
	for i, e := range r.Recommendations {
		got := fmt.Sprint(e.Namespace+"/"+e.Workload+"/"+e.Container, " ", e.Target, " ", e.LowerBound, " ", e.UpperBound)
		if got != want2[i] {
			t.Errorf("got  %s\nwant %s", got, want2[i])
		}
	}
}

func TestMalformedLines(t *testing.T) {
	cases := map[string]string{
		"1,ns,w,p,c,1,1":                     "expected 8 comma-separated fields",
		"1,ns,w,p,c,1,1,,":                   "too many fields",
		"x,ns,w,p,c,1,1,":                    "invalid timestamp",
		"1,,w,p,c,1,1,":                      "namespace is empty",
		"1,ns,w,p, c,1,1,":                   "surrounding spaces",
		"1,ns,w,p,c,,,":                      "needs cpu_cores or memory_bytes",
		"1,ns,w,p,c,abc,1,":                  "cpu_cores",
		"1,ns,w,p,c,-1,1,":                   "negative",
		"1,ns,w,p,c,1,1,boom":                "unknown event",
		"1,ns,w,p,c,1,1,oom":                 "must leave cpu_cores empty",
		"1,ns,w,p,c,,,oom":                   "needs memory_bytes",
		"1,\"ns\",w,p,c,1,1,":                "quoted",
		"1.,ns,w,p,c,1,1,":                   "invalid Unix timestamp",
		"1.0000000001,ns,w,p,c,1,1,":         "invalid Unix timestamp",
		"2026-02-30T00:00:00Z,ns,w,p,c,1,1,": "out of range",
		"2026-01-01T00:00:00,ns,w,p,c,1,1,":  "invalid timestamp",
	}
	for line, want := range cases {
		trace := Header + "\n1,ns,w,p,c,1,1,\n \n" + line + "\n"
		_, err := replayString(t, trace, defaultSettings(0))
		var m *MalformedError
		if !errors.As(err, &m) || m.Line != 4 || !strings.Contains(m.Reason, want) {
			t.Errorf("%q: got %v, want line 4 containing %q", line, err, want)
		}
	}
	if _, err := replayString(t, "", defaultSettings(0)); err == nil || !strings.HasPrefix(err.Error(), "line 1: empty trace") {
		t.Errorf("empty: %v", err)
	}
	if _, err := replayString(t, "time,ns\n", defaultSettings(0)); err == nil || !strings.HasPrefix(err.Error(), "line 1: expected the header") {
		t.Errorf("bad header: %v", err)
	}
	if _, err := replayString(t, "\ufeff"+Header+"\r\n1,a,b,c,d,1,,\r\n", defaultSettings(0)); err != nil {
		t.Errorf("BOM/CRLF: %v", err)
	}
}

func TestTimestamps(t *testing.T) {
	cases := map[string]int64{
		"0":                                    0,
		"1700000000":                           1_700_000_000_000_000_000,
		"1700000000.25":                        1_700_000_000_250_000_000,
		"1700000000.123456789":                 1_700_000_000_123_456_789,
		"2023-11-14T22:13:20Z":                 1_700_000_000_000_000_000,
		"2023-11-14t22:13:20z":                 1_700_000_000_000_000_000,
		"2023-11-14 22:13:20Z":                 1_700_000_000_000_000_000,
		"2023-11-14T23:13:20.5+01:00":          1_700_000_000_500_000_000,
		"2023-11-14T21:13:20.1234567891-01:00": 1_700_000_000_123_456_789,
		"2016-12-31T23:59:60Z":                 1_483_228_800_000_000_000,
	}
	for s, want := range cases {
		got, err := ParseTimestamp(s)
		if err != nil || got.UnixNano() != want {
			t.Errorf("%s: got %v (%d) %v, want %d", s, got, got.UnixNano(), err, want)
		}
	}
	for _, s := range []string{"", "-1", "1.2.3", "2023-11-14T22:13:20", "2023-11-14T22:13:20+24:00",
		"2023-11-14T22:13:20+0100", "2023-11-14T24:00:00Z", "2023-11-14T22:13:20.Z", "99999999999"} {
		if _, err := ParseTimestamp(s); err == nil && s != "99999999999" {
			t.Errorf("%q: accepted", s)
		}
	}
	if _, err := ParseTimestamp("9999999999999999999"); err == nil {
		t.Errorf("overflow accepted")
	}
	// RFC3339Nano output trims trailing zeros and omits a zero fraction.
	tm := time.Unix(0, 1_700_000_000_250_000_000).UTC()
	if s := tm.Format(time.RFC3339Nano); s != "2023-11-14T22:13:20.25Z" {
		t.Errorf("format %s", s)
	}
}

func TestFastPathMatchesParseQuantity(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		var s string
		switch rng.Intn(4) {
		case 0:
			s = fmt.Sprint(rng.Int63n(100000))
		case 1:
			w := 1 + rng.Intn(12)
			s = fmt.Sprintf("%d.%0*d", rng.Int63n(100000), w, rng.Int63n(1_000_000_000_000)%pow10(w))
		case 2:
			s = fmt.Sprintf("%d.%d", rng.Int63n(1_000_000_000_000), rng.Intn(1000))
		default:
			s = fmt.Sprint(rng.Int63n(1 << 40))
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if v, ok := fastDecimalMilli(s); ok && v != q.MilliValue() {
			t.Fatalf("cpu %s: fast %d, ParseQuantity %d", s, v, q.MilliValue())
		}
		if v, err := ParseCPUMilli(s); err != nil || v != q.MilliValue() {
			t.Fatalf("cpu %s: %d %v, want %d", s, v, err, q.MilliValue())
		}
		if v, err := ParseBytes(s); err != nil || v != q.Value() {
			t.Fatalf("memory %s: %d %v, want %d", s, v, err, q.Value())
		}
	}
	for s, want := range map[string]int64{"0.25": 250, "250m": 250, "1.5": 1500, "0.0004": 1, "1e-3": 1, "2": 2000} {
		if v, err := ParseCPUMilli(s); err != nil || v != want {
			t.Errorf("cpu %s: %d %v, want %d", s, v, err, want)
		}
	}
	for s, want := range map[string]int64{"268435456": 268435456, "256Mi": 268435456, "1.5": 2, "1k": 1000} {
		if v, err := ParseBytes(s); err != nil || v != want {
			t.Errorf("memory %s: %d %v, want %d", s, v, err, want)
		}
	}
}

func pow10(n int) int64 {
	p := int64(1)
	for i := 0; i < n; i++ {
		p *= 10
	}
	return p
}

func TestBuckets(t *testing.T) {
	defaultSettings(0)
	c := model.GetAggregationsConfig()
	if c.CPUHistogramOptions.NumBuckets() != 176 || c.MemoryHistogramOptions.NumBuckets() != 176 {
		t.Fatalf("bucket counts %d %d", c.CPUHistogramOptions.NumBuckets(), c.MemoryHistogramOptions.NumBuckets())
	}
	for v, want := range map[float64]int{0.5: 25, 1.0: 36, 3.14: 57, 0.0099: 0, 0.01: 1, 1e9: 175} {
		if got := c.CPUHistogramOptions.FindBucket(v); got != want {
			t.Errorf("cpu FindBucket(%v) = %d, want %d", v, got, want)
		}
	}
	if got := c.MemoryHistogramOptions.FindBucket(200 * 1024 * 1024); got != 14 {
		t.Errorf("memory FindBucket(200Mi) = %d", got)
	}
}

// The built binary: no stdout on a malformed line, exit 1; flags and dumps work.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vpa-oracle")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte(derivedTrace()+"oops\n"), 0o644)
	cmd := exec.Command(bin, "--trace", bad, "--every", "1h")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "line 1442: ") {
		t.Errorf("malformed: err=%v stdout=%q stderr=%q", err, stdout.String(), stderr.String())
	}
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte(derivedTrace()), 0o644)
	out, err := exec.Command(bin, "--trace", good, "--target-cpu-percentile=0.95", "--round-cpu-millicores", "50",
		"--humanize-memory", "--container-recommendation-max-allowed-memory=300Mi").Output()
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	g := r.Recommendations[0]
	if g.Target["cpu"] != "600m" || g.UpperBound["memory"] != "300Mi" || g.UncappedTarget["memory"] != "250Mi" {
		t.Errorf("flags: %+v", g)
	}
	out, err = exec.Command(bin, "--dump-buckets").Output()
	if err != nil {
		t.Fatal(err)
	}
	var buckets map[string][]struct {
		Bits  string  `json:"bits"`
		Value float64 `json:"value"`
	}
	if err := json.Unmarshal(out, &buckets); err != nil || len(buckets["cpu"]) != 176 || len(buckets["memory"]) != 176 ||
		buckets["cpu"][1].Bits != "3f847ae147ae147b" {
		t.Errorf("dump-buckets: %v %s", err, out[:200])
	}
	vals := filepath.Join(dir, "vals.txt")
	os.WriteFile(vals, []byte("0.5\n1\n209715200\n"), 0o644)
	out, err = exec.Command(bin, "--dump-find-bucket", vals).Output()
	if err != nil || !strings.Contains(string(out), `"input":"0.5","bits":"3fe0000000000000","cpu":25,"memory":0`) {
		t.Errorf("dump-find-bucket: %v %s", err, out)
	}
}
