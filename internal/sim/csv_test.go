package sim

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReaderParsesRows(t *testing.T) {
	in := "startTime,endTime,executionTime,jobName,stageName\r\n" +
		"100,160,60,pipeline-1,build\r\n" +
		"\n" +
		"100,200,100,\"pipe,line\",\"te\"\"st\"\n" +
		"150,151,1,p,s" // no trailing newline
	r, err := NewReader(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Job{{100, 160, 60, 2}, {100, 200, 100, 4}, {150, 151, 1, 5}}
	for i, w := range want {
		j, err := r.Next()
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if j != w {
			t.Fatalf("row %d: got %+v, want %+v", i, j, w)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}
	if r.Rows() != 3 {
		t.Fatalf("rows = %d", r.Rows())
	}
}

func TestReaderErrorsNameTheLine(t *testing.T) {
	const h = "startTime,endTime,executionTime,jobName,stageName\n"
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "line 1: empty file"},
		{"bad header", "start,end,exec,job,stage\n1,2,3,a,b\n", `line 1: column 1 is "start", want "startTime"`},
		{"short header", "startTime,endTime\n", "line 1: header has 2 columns"},
		{"not a number", h + "1,2,3,a,b\nx,2,3,a,b\n", `line 3: startTime "x": not an integer`},
		{"empty exec", h + "1,2,,a,b\n", `line 2: executionTime "": empty`},
		{"negative", h + "1,2,-3,a,b\n", "line 2: executionTime -3: must not be negative"},
		{"columns", h + "1,2,3,a\n", "line 2: 4 columns, want 5"},
		{"unsorted", h + "10,20,3,a,b\n5,20,3,a,b\n", "line 3: startTime 5 is before the previous row's 10"},
		{"bad quote", h + "1,2,3,\"a,b\n", "line 2: malformed CSV"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(c.in))
			for err == nil {
				_, err = r.Next()
			}
			if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestReaderWorkloads reads every shared workload completely.
func TestReaderWorkloads(t *testing.T) {
	files, _ := filepath.Glob(workloadDir() + "/*.csv")
	if len(files) == 0 {
		t.Skip("no workloads in " + workloadDir())
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n++
		}
		fh.Close()
		if n == 0 || int(n) != r.Line()-1 {
			t.Fatalf("%s: %d rows over %d lines", f, n, r.Line())
		}
	}
}

// workloadDir is the shared workloads folder (../shared/workloads from the
// repository root), overridable with AQUARIUM_WORKLOADS.
func workloadDir() string {
	if d := os.Getenv("AQUARIUM_WORKLOADS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "workloads")
}

func BenchmarkReader(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("startTime,endTime,executionTime,jobName,stageName\n")
	for i := range 10000 {
		sb.WriteString("1735689840,1735692703,2863,pipeline-058,ui-test\n")
		_ = i
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := NewReader(strings.NewReader(in))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
