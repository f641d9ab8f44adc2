package sim

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Job is one row of a workload: a job that needs one instance for Exec
// seconds, arriving at Start (epoch seconds). End is informational.
type Job struct {
	Start int64 // epoch seconds when the job is queued
	End   int64 // epoch seconds when the job ended in the trace (informational)
	Exec  int64 // seconds the job needs an instance for, once it is ready
	Line  int   // line number in the CSV file (1 = header)
}

// workloadHeader is the required CSV header.
var workloadHeader = []string{"startTime", "endTime", "executionTime", "jobName", "stageName"}

// Reader streams jobs from a workload CSV (header
// startTime,endTime,executionTime,jobName,stageName; epoch seconds; sorted by
// startTime). It keeps only the current line in memory. Errors carry the line
// number.
type Reader struct {
	br        *bufio.Reader
	line      int
	lastStart int64
	started   bool
	rows      int64
	bytes     int64
	fields    [][]byte // reused between rows
}

// NewReader checks the header and returns a Reader positioned on the first row.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, 256<<10)}
	raw, err := rd.readLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("workload: line 1: empty file, want header " + headerString())
		}
		return nil, fmt.Errorf("workload: line 1: %w", err)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	fields, err := splitFields(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("workload: line 1: %w", err)
	}
	if len(fields) != len(workloadHeader) {
		return nil, fmt.Errorf("workload: line 1: header has %d columns, want %s", len(fields), headerString())
	}
	for i, want := range workloadHeader {
		if string(bytes.TrimSpace(fields[i])) != want {
			return nil, fmt.Errorf("workload: line 1: column %d is %q, want %q (header %s)", i+1, fields[i], want, headerString())
		}
	}
	return rd, nil
}

func headerString() string {
	var b bytes.Buffer
	for i, h := range workloadHeader {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(h)
	}
	return b.String()
}

// Rows is the number of jobs returned so far.
func (r *Reader) Rows() int64 { return r.rows }

// Bytes is the number of input bytes consumed so far (for progress).
func (r *Reader) Bytes() int64 { return r.bytes }

// Line is the number of the last line read.
func (r *Reader) Line() int { return r.line }

// readLine returns the next line without its end-of-line; io.EOF at the end.
func (r *Reader) readLine() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Very long line: collect it.
		full := append([]byte(nil), b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = r.br.ReadSlice('\n')
			full = append(full, b...)
		}
		b = full
	}
	if len(b) == 0 && err != nil {
		return nil, err
	}
	r.line++
	r.bytes += int64(len(b))
	b = bytes.TrimRight(b, "\r\n")
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// Next returns the next job, io.EOF after the last one, or an error naming
// the line for a malformed or unsorted row. Blank lines are skipped.
func (r *Reader) Next() (Job, error) {
	for {
		raw, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Job{}, io.EOF
			}
			return Job{}, fmt.Errorf("workload: line %d: %w", r.line+1, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		job, err := r.parse(raw)
		if err != nil {
			return Job{}, fmt.Errorf("workload: line %d: %w", r.line, err)
		}
		r.rows++
		return job, nil
	}
}

func (r *Reader) parse(raw []byte) (Job, error) {
	fields, err := splitFields(raw, r.fields[:0])
	if err != nil {
		return Job{}, err
	}
	r.fields = fields
	if len(fields) != len(workloadHeader) {
		return Job{}, fmt.Errorf("%d columns, want %d (%s)", len(fields), len(workloadHeader), headerString())
	}
	var vals [3]int64
	for i := range 3 {
		v, err := parseInt(bytes.TrimSpace(fields[i]))
		if err != nil {
			return Job{}, fmt.Errorf("%s %q: %w", workloadHeader[i], fields[i], err)
		}
		if v < 0 {
			return Job{}, fmt.Errorf("%s %d: must not be negative", workloadHeader[i], v)
		}
		vals[i] = v
	}
	j := Job{Start: vals[0], End: vals[1], Exec: vals[2], Line: r.line}
	if r.started && j.Start < r.lastStart {
		return Job{}, fmt.Errorf("startTime %d is before the previous row's %d: the file must be sorted by startTime", j.Start, r.lastStart)
	}
	r.started = true
	r.lastStart = j.Start
	return j, nil
}

// splitFields splits a CSV line into out (reused); quoted fields fall back
// to encoding/csv.
func splitFields(raw []byte, out [][]byte) ([][]byte, error) {
	if bytes.IndexByte(raw, '"') >= 0 {
		cr := csv.NewReader(bytes.NewReader(raw))
		cr.FieldsPerRecord = -1
		rec, err := cr.Read()
		if err != nil {
			return nil, fmt.Errorf("malformed CSV: %w", err)
		}
		out := make([][]byte, len(rec))
		for i, s := range rec {
			out[i] = []byte(s)
		}
		return out, nil
	}
	for {
		i := bytes.IndexByte(raw, ',')
		if i < 0 {
			out = append(out, raw)
			return out, nil
		}
		out = append(out, raw[:i])
		raw = raw[i+1:]
	}
}

// parseInt parses a non-empty decimal integer without allocating.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty, want an integer")
	}
	neg := false
	s := b
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
		if len(s) == 0 {
			return 0, errors.New("not an integer")
		}
	}
	if len(s) > 18 {
		v, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return 0, errors.New("not an integer")
		}
		return v, nil
	}
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("not an integer")
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}
