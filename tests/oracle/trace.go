package main

// Reading the CSV usage-trace format shared with `vpa-recommender replay`.
//
// Header: timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event
//
// The lexical rules deliberately mirror recommender/src/trace.rs so that both sides accept and
// reject the same lines: a UTF-8 BOM before the header is ignored, trailing "\r"/"\n" are
// stripped, whitespace-only lines are skipped (they still count for line numbers), fields are
// split on every comma (no quoting: a '"' anywhere is an error), names must be non-empty without
// surrounding whitespace, negative quantities are errors.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Header is the exact first line of a trace.
const Header = "timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event"

// MalformedError is a line that cannot be read.
type MalformedError struct {
	Line   int
	Reason string
}

func (e *MalformedError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Row is one parsed data line. The byte slices point into the reader's buffer and are only
// valid until the next call to Next.
type Row struct {
	Line      int
	Time      time.Time
	Key       []byte // "namespace,workload,pod,container"
	Namespace []byte
	Workload  []byte
	Pod       []byte
	Container []byte
	IsOOM     bool
	HasCPU    bool
	CPUMilli  int64
	HasMemory bool
	Memory    int64 // usage bytes, or the request bytes for an OOM row
}

// TraceReader streams rows; it never holds more than one line.
type TraceReader struct {
	r             *bufio.Reader
	line          int
	headerChecked bool
	// cache of the last timestamp field (traces repeat timestamps a lot)
	lastTSField []byte
	lastTS      time.Time
}

// NewTraceReader wraps r.
func NewTraceReader(r io.Reader) *TraceReader {
	return &TraceReader{r: bufio.NewReaderSize(r, 1<<20)}
}

func (t *TraceReader) readLine() ([]byte, bool, error) {
	b, err := t.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A very long line: collect it.
		buf := append([]byte(nil), b...)
		for err == bufio.ErrBufferFull {
			b, err = t.r.ReadSlice('\n')
			buf = append(buf, b...)
		}
		b = buf
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	if len(b) == 0 && err == io.EOF {
		return nil, false, nil
	}
	t.line++
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b, true, nil
}

func (t *TraceReader) malformed(format string, args ...any) error {
	return &MalformedError{Line: t.line, Reason: fmt.Sprintf(format, args...)}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r', '\f': // Rust's is_ascii_whitespace (no \v)
		default:
			return false
		}
	}
	return true
}

// Next returns the next row; ok is false at the end of the trace.
func (t *TraceReader) Next(row *Row) (ok bool, err error) {
	if !t.headerChecked {
		b, ok, err := t.readLine()
		if err != nil {
			return false, err
		}
		if !ok {
			return false, &MalformedError{Line: 1, Reason: fmt.Sprintf("empty trace: expected the header %q", Header)}
		}
		h := strings.TrimPrefix(string(b), "\xef\xbb\xbf")
		if h != Header {
			return false, t.malformed("expected the header %q, found %q", Header, h)
		}
		t.headerChecked = true
	}
	var b []byte
	for {
		var ok bool
		b, ok, err = t.readLine()
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
		if !isBlank(b) {
			break
		}
	}
	if reason := t.parseRow(b, row); reason != "" {
		return false, &MalformedError{Line: t.line, Reason: reason}
	}
	return true, nil
}

func (t *TraceReader) parseRow(line []byte, row *Row) string {
	var f [8][]byte
	n, start := 0, 0
	for i, c := range line {
		if c == ',' {
			if n >= 7 {
				return "too many fields: expected 8"
			}
			f[n] = line[start:i]
			n++
			start = i + 1
		} else if c == '"' {
			return "quoted fields are not supported"
		}
	}
	if n != 7 {
		return fmt.Sprintf("expected 8 comma-separated fields, found %d", n+1)
	}
	f[7] = line[start:]
	if !utf8.Valid(line) {
		return "the line is not valid UTF-8"
	}
	*row = Row{Line: t.line}

	// timestamp
	if t.lastTSField != nil && string(f[0]) == string(t.lastTSField) {
		row.Time = t.lastTS
	} else {
		ts, err := ParseTimestamp(string(f[0]))
		if err != nil {
			return err.Error()
		}
		t.lastTSField = append(t.lastTSField[:0], f[0]...)
		t.lastTS = ts
		row.Time = ts
	}

	names := [4]string{"namespace", "workload", "pod", "container"}
	for i, name := range names {
		v := f[1+i]
		if len(v) == 0 {
			return name + " is empty"
		}
		if s := string(v); strings.TrimSpace(s) != s {
			return fmt.Sprintf("%s %q has surrounding spaces", name, s)
		}
	}
	row.Namespace, row.Workload, row.Pod, row.Container = f[1], f[2], f[3], f[4]
	keyStart := len(f[0]) + 1
	keyLen := len(f[1]) + len(f[2]) + len(f[3]) + len(f[4]) + 3
	row.Key = line[keyStart : keyStart+keyLen]

	cpu, mem := f[5], f[6]
	switch string(f[7]) {
	case "":
		if len(cpu) == 0 && len(mem) == 0 {
			return "a usage row needs cpu_cores or memory_bytes"
		}
		if len(cpu) > 0 {
			v, err := ParseCPUMilli(string(cpu))
			if err != nil {
				return "cpu_cores: " + err.Error()
			}
			row.HasCPU, row.CPUMilli = true, v
		}
		if len(mem) > 0 {
			v, err := ParseBytes(string(mem))
			if err != nil {
				return "memory_bytes: " + err.Error()
			}
			row.HasMemory, row.Memory = true, v
		}
	case "oom":
		if len(cpu) != 0 {
			return "an oom row must leave cpu_cores empty"
		}
		if len(mem) == 0 {
			return "an oom row needs memory_bytes (the memory request at the kill)"
		}
		v, err := ParseBytes(string(mem))
		if err != nil {
			return "memory_bytes: " + err.Error()
		}
		row.IsOOM, row.HasMemory, row.Memory = true, true, v
	default:
		return fmt.Sprintf("unknown event %q: expected empty or \"oom\"", string(f[7]))
	}
	return ""
}

// Quantities beyond these limits would overflow int64 millicores or bytes, where
// apimachinery's accessors wrap silently; both replays reject them.
var (
	maxCPUCores    = resource.MustParse("9e12")
	maxMemoryBytes = resource.MustParse("9e18")
)

// ParseCPUMilli parses CPU cores given as a Kubernetes quantity into millicores, rounded up
// exactly as resource.Quantity.MilliValue does.
func ParseCPUMilli(s string) (int64, error) {
	if v, ok := fastDecimalMilli(s); ok {
		return v, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	if q.Cmp(maxCPUCores) > 0 {
		return 0, fmt.Errorf("value %q is out of range (at most %s cores)", s, maxCPUCores.String())
	}
	m := q.MilliValue()
	if m < 0 {
		return 0, fmt.Errorf("negative value %q", s)
	}
	return m, nil
}

// ParseBytes parses memory given as a Kubernetes quantity into bytes, rounded up exactly as
// resource.Quantity.Value does.
func ParseBytes(s string) (int64, error) {
	if len(s) > 0 && len(s) <= 18 {
		var v int64
		ok := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + int64(c-'0')
		}
		if ok {
			return v, nil
		}
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	if q.Cmp(maxMemoryBytes) > 0 {
		return 0, fmt.Errorf("value %q is out of range (at most %s bytes)", s, maxMemoryBytes.String())
	}
	v := q.Value()
	if v < 0 {
		return 0, fmt.Errorf("negative value %q", s)
	}
	return v, nil
}

// fastDecimalMilli handles `digits[.digits]` (at most 12 integer digits); anything else goes
// through resource.ParseQuantity. Tested against ParseQuantity in oracle_test.go.
func fastDecimalMilli(s string) (int64, bool) {
	dot := strings.IndexByte(s, '.')
	intPart, frac := s, ""
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:]
		if frac == "" {
			return 0, false
		}
	}
	if intPart == "" || len(intPart) > 12 {
		return 0, false
	}
	var milli int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		milli = milli*10 + int64(c-'0')
	}
	milli *= 1000
	roundUp := false
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		switch i {
		case 0:
			milli += d * 100
		case 1:
			milli += d * 10
		case 2:
			milli += d
		default:
			if d != 0 {
				roundUp = true
			}
		}
	}
	if roundUp {
		milli++
	}
	return milli, true
}

// ParseTimestamp parses Unix seconds (`1700000000`, `1700000000.25`, at most 9 fractional
// digits) or RFC 3339. The RFC 3339 grammar is the one chrono's parse_from_rfc3339 accepts
// (used by the Rust side): 'T', 't' or ' ' between date and time, any number of fractional
// digits (digits past the 9th are truncated), "Z"/"z" or ±hh:mm offsets below 24h, and a leap
// second :60 counting as the next second.
func ParseTimestamp(s string) (time.Time, error) {
	if len(s) > 0 && s[0] >= '0' && s[0] <= '9' && strings.Trim(s, "0123456789.") == "" {
		return parseUnix(s)
	}
	return parseRFC3339(s)
}

var errRange = errors.New("out of range")

func parseUnix(s string) (time.Time, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || strings.Contains(frac, ".") || len(frac) > 9 || (hasDot && frac == "") {
		return time.Time{}, fmt.Errorf("invalid Unix timestamp %q", s)
	}
	var secs int64
	for i := 0; i < len(intPart); i++ {
		d := int64(intPart[i] - '0')
		if secs > (1<<63-1-d)/10 {
			return time.Time{}, fmt.Errorf("Unix timestamp %q is out of range", s)
		}
		secs = secs*10 + d
	}
	var nanos int64
	for i := 0; i < 9; i++ {
		nanos *= 10
		if i < len(frac) {
			nanos += int64(frac[i] - '0')
		}
	}
	total, ok := mulAdd(secs, 1_000_000_000, nanos)
	if !ok {
		return time.Time{}, fmt.Errorf("Unix timestamp %q is out of range", s)
	}
	return time.Unix(0, total).UTC(), nil
}

func mulAdd(a, b, c int64) (int64, bool) {
	const max = 1<<63 - 1
	const min = -1 << 63
	if a != 0 {
		if a > 0 && (a > max/b || a < min/b) {
			return 0, false
		}
		if a < 0 && a < min/b {
			return 0, false
		}
	}
	p := a * b
	r := p + c
	if (c > 0 && r < p) || (c < 0 && r > p) {
		return 0, false
	}
	return r, true
}

func digits2(s string, i int) (int, bool) {
	a, b := s[i], s[i+1]
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

func parseRFC3339(s string) (time.Time, error) {
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("invalid timestamp %q: expected RFC 3339 or Unix seconds", s)
	}
	if len(s) < 19 {
		return bad()
	}
	y1, ok1 := digits2(s, 0)
	y2, ok2 := digits2(s, 2)
	month, ok3 := digits2(s, 5)
	day, ok4 := digits2(s, 8)
	hour, ok5 := digits2(s, 11)
	minute, ok6 := digits2(s, 14)
	sec, ok7 := digits2(s, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || s[4] != '-' || s[7] != '-' ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return bad()
	}
	year := y1*100 + y2
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, fmt.Errorf("invalid timestamp %q: out of range", s)
	}
	rest := s[19:]
	nanos := 0
	if len(rest) > 0 && rest[0] == '.' {
		rest = rest[1:]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n < 9 {
				nanos = nanos*10 + int(rest[n]-'0')
			}
			n++
		}
		if n == 0 {
			return bad()
		}
		for k := n; k < 9; k++ {
			nanos *= 10
		}
		rest = rest[n:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) > 0 && (rest[0] == '+' || rest[0] == '-' || strings.HasPrefix(rest, "\u2212")):
		neg := rest[0] != '+'
		if rest[0] == '+' || rest[0] == '-' {
			rest = rest[1:]
		} else {
			rest = rest[len("\u2212"):]
		}
		if len(rest) != 5 || rest[2] != ':' {
			return bad()
		}
		oh, okh := digits2(rest, 0)
		om, okm := digits2(rest, 3)
		if !okh || !okm || om > 59 {
			return bad()
		}
		offset = oh*3600 + om*60
		if offset >= 86400 {
			return time.Time{}, fmt.Errorf("invalid timestamp %q: offset out of range", s)
		}
		if neg {
			offset = -offset
		}
	default:
		return bad()
	}
	leap := 0
	if sec == 60 {
		sec, leap = 59, 1
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	unix := t.Unix() + int64(leap) - int64(offset)
	total, ok := mulAdd(unix, 1_000_000_000, int64(nanos))
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp %q is out of range", s)
	}
	return time.Unix(0, total).UTC(), nil
}

func daysIn(year, month int) int {
	switch month {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	default:
		return 31
	}
}
