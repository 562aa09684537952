package harness

import (
	"flag"
	"math"
	"testing"
	"time"
)

// A real redis-benchmark 7.0.15 --csv output, as captured on this machine.
const csv7 = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","47281.32","0.561","0.152","0.527","0.663","1.703","5.383"
"GET","47169.81","0.543","0.200","0.535","0.655","0.767","2.679"
`

func TestParseBenchCSVRedis7(t *testing.T) {
	rows, err := ParseBenchCSV([]byte(csv7))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %v, want SET and GET", rows)
	}
	set := rows["SET"]
	if set.OpsPerSec != 47281.32 || set.P50Millis != 0.527 || set.P99Millis != 1.703 {
		t.Errorf("SET = %+v", set)
	}
	if get := rows["GET"]; get.P99Millis != 0.767 {
		t.Errorf("GET = %+v", get)
	}
}

func TestParseBenchCSVCustomCommandAndNoise(t *testing.T) {
	// A custom command's name contains spaces; an error line printed by -e
	// and a blank line must be skipped.
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
Error from server: ERR unknown command
"MGET key:__rand_int__ key:__rand_int__","46296.30","0.574","0.160","0.543","0.799","1.471","3.647"

`
	rows, err := ParseBenchCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := rows["MGET key:__rand_int__ key:__rand_int__"]
	if !ok || r.OpsPerSec != 46296.30 || r.P99Millis != 1.471 {
		t.Fatalf("rows = %+v", rows)
	}
}

func TestParseBenchCSVRedis6HasNoLatencies(t *testing.T) {
	rows, err := ParseBenchCSV([]byte(`"SET","81300.81"` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := rows["SET"]
	if r.OpsPerSec != 81300.81 || !math.IsNaN(r.P50Millis) || !math.IsNaN(r.P99Millis) {
		t.Fatalf("SET = %+v", r)
	}
}

func TestParseBenchCSVErrors(t *testing.T) {
	for _, out := range []string{
		"",
		"Could not connect to Redis at 127.0.0.1:1: Connection refused\n",
		`"test","rps"` + "\n" + `"SET","fast"` + "\n",
	} {
		if rows, err := ParseBenchCSV([]byte(out)); err == nil {
			t.Errorf("ParseBenchCSV(%q) = %v, want an error", out, rows)
		}
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5}, 5},
		{[]float64{nan, 7, 1, nan, 4}, 4},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
	if got := Median([]float64{nan}); !math.IsNaN(got) {
		t.Errorf("Median(NaN) = %v, want NaN", got)
	}
}

func TestMedianRatioPairsRounds(t *testing.T) {
	// Round 2 was slow for both (a neighbour compiling); pairing by round
	// keeps the ratio at 2 where the ratio of medians (180/100) would not.
	keel := []float64{200, 20, 180}
	redis := []float64{100, 10, 100}
	if got := MedianRatio(keel, redis); got != 2 {
		t.Errorf("MedianRatio = %v, want 2 (per-round 2, 2, 1.8)", got)
	}
	got := Ratios([]float64{1, math.NaN(), 3}, []float64{2, 5, 0})
	if got[0] != 0.5 || !math.IsNaN(got[1]) || !math.IsNaN(got[2]) {
		t.Errorf("ratios = %v, want [0.5 NaN NaN]", got)
	}
	if got := MedianRatio([]float64{1, 2}, []float64{1}); got != 1 {
		t.Errorf("MedianRatio with unequal lengths = %v, want 1 (only paired rounds)", got)
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n"
	if got := CPUModel(info); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
}

func TestFormats(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct{ got, want string }{
		{FmtOps(812345), "812.3k"}, {FmtOps(1250000), "1.25M"}, {FmtOps(nan), "–"},
		{FmtMillis(0.5271), "0.527"}, {FmtMillis(nan), "–"},
		{FmtRatio(1.2, "×"), "1.20×"}, {FmtRatio(0.5, ""), "0.50"},
		{FmtRatio(nan, "×"), "–"}, {FmtRatio(math.Inf(1), ""), "–"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseFlagsReportsExplicitFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("rounds", 3, "")
	fs.Int("requests", 100, "")
	set, err := ParseFlags(fs, []string{"--rounds", "5"})
	if err != nil || !set["rounds"] || set["requests"] {
		t.Errorf("set = %v, err = %v; want only rounds", set, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := ParseFlags(fs, []string{"extra"}); err == nil {
		t.Error("a positional argument was accepted")
	}
}

func TestPositiveInts(t *testing.T) {
	got, err := PositiveInts(" 1, 16,,4 ")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 16 || got[2] != 4 {
		t.Errorf("PositiveInts = %v, %v; want [1 16 4]", got, err)
	}
	for _, bad := range []string{"0", "-1", "x", "1,two"} {
		if got, err := PositiveInts(bad); err == nil {
			t.Errorf("PositiveInts(%q) = %v, want an error", bad, got)
		}
	}
}

// A command name may hold spaces and parentheses (it is the executable's
// name, truncated to 15 bytes): utime and stime are counted from the last
// ')'. The line is /proc/PID/stat's layout with the name replaced.
func TestParseProcStat(t *testing.T) {
	line := "1234 (keel (x) y) S 1 1234 1234 0 -1 4194560 25093 0 3 0 4711 815 0 0 20 0 9 0 12345 2147483648 8000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	ut, st, err := ParseProcStat([]byte(line))
	if err != nil || ut != 4711 || st != 815 {
		t.Errorf("ParseProcStat = %d, %d, %v; want 4711, 815", ut, st, err)
	}
	if d := Ticks(ut + st); d != 55260*time.Millisecond {
		t.Errorf("Ticks(%d) = %v, want 55.26s", ut+st, d)
	}
	for _, bad := range []string{
		"",
		"1234 keel S 1 1234 1234 0 -1 4194560 25093 0 3 0 4711 815 0 0",
		"1234 (keel) S 1 1234 1234 0 -1 4194560 25093 0 3 0 4711",
		"1234 (keel) S 1 1234 1234 0 -1 4194560 25093 0 3 0 47x1 815 0 0",
		"1234 (keel) S 1 1234 1234 0 -1 4194560 25093 0 3 0 4711 -815 0 0",
	} {
		if ut, st, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) = %d, %d, no error", bad, ut, st)
		}
	}
}

func TestParseMachineStat(t *testing.T) {
	stat := "cpu  5460775 49742 1149054 2609546 9562 0 186018 5873 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
	busy, total, err := ParseMachineStat([]byte(stat))
	// busy: user, nice, system, irq, softirq, steal; total adds idle and iowait.
	if err != nil || busy != 5460775+49742+1149054+0+186018+5873 || total != busy+2609546+9562 {
		t.Errorf("ParseMachineStat = %d, %d, %v", busy, total, err)
	}
	if _, _, err := ParseMachineStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("ParseMachineStat accepted a file without the cpu line first")
	}
}
