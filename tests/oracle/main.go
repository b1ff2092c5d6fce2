// Command vpa-oracle replays a CSV usage trace through the real upstream Vertical Pod Autoscaler
// recommender code (k8s.io/autoscaler/vertical-pod-autoscaler v1.7.1) and prints the
// recommendations as JSON, for differential tests against `vpa-recommender replay`.
//
//	vpa-oracle --trace FILE [--every DURATION] [recommender flags]
//	vpa-oracle --dump-buckets
//	vpa-oracle --dump-find-bucket FILE
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/logic"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/model"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/util"
)

// Output buffers the JSON in memory and spills to an unlinked temporary file past a size
// limit, so that nothing reaches stdout before the whole trace has been read (a malformed line
// must produce no stdout output) while memory stays bounded.
type Output struct {
	mem   bytes.Buffer
	file  *os.File
	fileW *bufio.Writer
	err   error
}

const spillLimit = 4 << 20

func (o *Output) Write(p []byte) {
	if o.err != nil {
		return
	}
	if o.file == nil {
		o.mem.Write(p)
		if o.mem.Len() < spillLimit {
			return
		}
		f, err := os.CreateTemp("", "vpa-oracle-*.json")
		if err != nil {
			o.err = err
			return
		}
		_ = os.Remove(f.Name())
		o.file, o.fileW = f, bufio.NewWriterSize(f, 1<<20)
		_, o.err = o.fileW.Write(o.mem.Bytes())
		o.mem = bytes.Buffer{}
		return
	}
	_, o.err = o.fileW.Write(p)
}

// CopyTo writes everything to w.
func (o *Output) CopyTo(w io.Writer) error {
	if o.err != nil {
		return o.err
	}
	if o.file == nil {
		_, err := w.Write(o.mem.Bytes())
		return err
	}
	if err := o.fileW.Flush(); err != nil {
		return err
	}
	if _, err := o.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, o.file)
	return err
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func main() {
	fs := flag.NewFlagSet("vpa-oracle", flag.ContinueOnError)
	trace := fs.String("trace", "", "CSV usage trace to replay")
	every := fs.Duration("every", 0, "emit recommendations at every multiple of this duration (from the Unix epoch)")
	dumpBuckets := fs.Bool("dump-buckets", false, "print the bucket starts of the production CPU and memory histograms")
	dumpFind := fs.String("dump-find-bucket", "", "file with one decimal float per line: print FindBucket of the CPU (cores) and memory (bytes) histogram options for each")

	// Recommender flags: names, types and defaults as upstream's pkg/recommender/config (1.7.1).
	safetyMargin := fs.Float64("recommendation-margin-fraction", 0.15, "Fraction of usage added as the safety margin to the recommended request")
	podMinCPU := fs.Float64("pod-recommendation-min-cpu-millicores", 25, "Minimum CPU recommendation for a pod")
	podMinMemory := fs.Float64("pod-recommendation-min-memory-mb", 250, "Minimum memory recommendation for a pod")
	targetCPU := fs.Float64("target-cpu-percentile", 0.9, "CPU usage percentile that will be used as a base for CPU target recommendation")
	lowerCPU := fs.Float64("recommendation-lower-bound-cpu-percentile", 0.5, "CPU usage percentile that will be used for the lower bound on CPU recommendation")
	upperCPU := fs.Float64("recommendation-upper-bound-cpu-percentile", 0.95, "CPU usage percentile that will be used for the upper bound on CPU recommendation")
	confCPU := fs.Duration("confidence-interval-cpu", 24*60*60*1e9, "The time interval used for computing the confidence multiplier for the CPU lower and upper bound")
	targetMem := fs.Float64("target-memory-percentile", 0.9, "Memory usage percentile that will be used as a base for memory target recommendation")
	lowerMem := fs.Float64("recommendation-lower-bound-memory-percentile", 0.5, "Memory usage percentile that will be used for the lower bound on memory recommendation")
	upperMem := fs.Float64("recommendation-upper-bound-memory-percentile", 0.95, "Memory usage percentile that will be used for the upper bound on memory recommendation")
	confMem := fs.Duration("confidence-interval-memory", 24*60*60*1e9, "The time interval used for computing the confidence multiplier for the memory lower and upper bound")
	humanize := fs.Bool("humanize-memory", false, "DEPRECATED: convert memory values to the highest appropriate binary unit with up to 2 decimal places")
	roundCPU := fs.Int("round-cpu-millicores", 1, "CPU recommendation rounding factor in millicores")
	roundMem := fs.Int("round-memory-bytes", 1, "Memory recommendation rounding factor in bytes")
	memInterval := fs.Duration("memory-aggregation-interval", model.DefaultMemoryAggregationInterval, "Length of a single interval, for which the peak memory usage is computed")
	memIntervalCount := fs.Int64("memory-aggregation-interval-count", model.DefaultMemoryAggregationIntervalCount, "Number of consecutive memory-aggregation-intervals which make up the memory aggregation window")
	memHalfLife := fs.Duration("memory-histogram-decay-half-life", model.DefaultMemoryHistogramDecayHalfLife, "Half life of memory usage samples")
	cpuHalfLife := fs.Duration("cpu-histogram-decay-half-life", model.DefaultCPUHistogramDecayHalfLife, "Half life of CPU usage samples")
	oomRatio := fs.Float64("oom-bump-up-ratio", model.DefaultOOMBumpUpRatio, "Memory bump up ratio when OOM occurs")
	oomMinBump := fs.Float64("oom-min-bump-up-bytes", model.DefaultOOMMinBumpUp, "Minimal increase of memory (in bytes) when OOM occurs")
	var maxCPU, maxMemory resource.QuantityValue
	fs.Var(&maxCPU, "container-recommendation-max-allowed-cpu", "Maximum amount of CPU that will be recommended for a container")
	fs.Var(&maxMemory, "container-recommendation-max-allowed-memory", "Maximum amount of memory that will be recommended for a container")

	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fail(2, "unexpected arguments: %v", fs.Args())
	}

	// As routines.NewRecommenderController does.
	model.InitializeAggregationsConfig(model.NewAggregationsConfig(
		*memInterval, *memIntervalCount, *memHalfLife, *cpuHalfLife, *oomRatio, *oomMinBump))

	switch {
	case *dumpBuckets:
		dumpBucketStarts()
		return
	case *dumpFind != "":
		if err := dumpFindBucket(*dumpFind); err != nil {
			fail(1, "%v", err)
		}
		return
	case *trace == "":
		fail(2, "--trace FILE is required (or --dump-buckets / --dump-find-bucket FILE)")
	}
	if *every < 0 {
		fail(2, "--every must be positive")
	}

	// As routines.initGlobalMaxAllowed does.
	globalMax := make(corev1.ResourceList)
	if !maxCPU.IsZero() {
		globalMax[corev1.ResourceCPU] = maxCPU.Quantity
	}
	if !maxMemory.IsZero() {
		globalMax[corev1.ResourceMemory] = maxMemory.Quantity
	}

	settings := Settings{
		Recommender: logic.CreatePodResourceRecommender(logic.RecommendationConfig{
			SafetyMarginFraction:       *safetyMargin,
			PodMinCPUMillicores:        *podMinCPU,
			PodMinMemoryMb:             *podMinMemory,
			TargetCPUPercentile:        *targetCPU,
			LowerBoundCPUPercentile:    *lowerCPU,
			UpperBoundCPUPercentile:    *upperCPU,
			ConfidenceIntervalCPU:      *confCPU,
			TargetMemoryPercentile:     *targetMem,
			LowerBoundMemoryPercentile: *lowerMem,
			UpperBoundMemoryPercentile: *upperMem,
			ConfidenceIntervalMemory:   *confMem,
		}),
		Format: logic.RecommendationFormat{
			HumanizeMemory:     *humanize,
			RoundCPUMillicores: *roundCPU,
			RoundMemoryBytes:   *roundMem,
		},
		GlobalMaxAllowed: globalMax,
		Every:            *every,
	}

	f, err := os.Open(*trace)
	if err != nil {
		fail(1, "%v", err)
	}
	defer f.Close()

	out := &Output{}
	stats, err := run(f, settings, out)
	if err != nil {
		fail(1, "%v", err)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if _, err := w.WriteString(`{"recommendations":[`); err != nil {
		fail(1, "%v", err)
	}
	if err := out.CopyTo(w); err != nil {
		fail(1, "%v", err)
	}
	tail := []byte("\n],\n\"stats\":")
	tail = stats.appendJSON(tail)
	tail = append(tail, "}\n"...)
	if _, err := w.Write(tail); err != nil {
		fail(1, "%v", err)
	}
	if err := w.Flush(); err != nil {
		fail(1, "%v", err)
	}
}

// run replays the whole trace into out.
func run(r io.Reader, settings Settings, out *Output) (Stats, error) {
	tr := NewTraceReader(r)
	rp := NewReplay(settings, out)
	var row Row
	for {
		ok, err := tr.Next(&row)
		if err != nil {
			return Stats{}, err
		}
		if !ok {
			break
		}
		rp.Feed(&row)
	}
	rp.Finish()
	return rp.stats, nil
}

func appendFloat(b []byte, v float64) []byte {
	b = append(b, `{"bits":"`...)
	b = append(b, fmt.Sprintf("%016x", math.Float64bits(v))...)
	b = append(b, `","value":`...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '}')
}

func bucketStarts(o util.HistogramOptions) []byte {
	b := []byte{'['}
	for i := 0; i < o.NumBuckets(); i++ {
		if i > 0 {
			b = append(b, ",\n"...)
		} else {
			b = append(b, '\n')
		}
		b = appendFloat(b, o.GetBucketStart(i))
	}
	return append(b, "\n]"...)
}

func dumpBucketStarts() {
	c := model.GetAggregationsConfig()
	b := []byte(`{"cpu":`)
	b = append(b, bucketStarts(c.CPUHistogramOptions)...)
	b = append(b, ",\n\"memory\":"...)
	b = append(b, bucketStarts(c.MemoryHistogramOptions)...)
	b = append(b, "}\n"...)
	os.Stdout.Write(b)
}

func dumpFindBucket(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c := model.GetAggregationsConfig()
	b := []byte(`{"results":[`)
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			return fmt.Errorf("line %d: %v", i+1, err)
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, "\n{\"input\":"...)
		b = appendJSONString(b, line)
		b = append(b, `,"bits":"`...)
		b = append(b, fmt.Sprintf("%016x", math.Float64bits(v))...)
		b = append(b, `","cpu":`...)
		b = strconv.AppendInt(b, int64(c.CPUHistogramOptions.FindBucket(v)), 10)
		b = append(b, `,"memory":`...)
		b = strconv.AppendInt(b, int64(c.MemoryHistogramOptions.FindBucket(v)), 10)
		b = append(b, '}')
	}
	b = append(b, "\n]}\n"...)
	_, err = os.Stdout.Write(b)
	return err
}
