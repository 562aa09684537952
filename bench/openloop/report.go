package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
)

// preload SETs key:0 … key:<keys-1> to value, pipelined.
func preload(addr string, keys int, value []byte) error {
	c, err := harness.Dial(addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Pipeline(keys, func(i int) [][]byte {
		return [][]byte{[]byte("SET"), []byte("key:" + strconv.Itoa(i)), value}
	})
}

// Targets from issue 18 (the seed's): at 50k requests/s per node.
const (
	targetRate     = 50_000
	targetGetP99ms = 2.0
	targetSetP99ms = 5.0
)

func report(cfg config, points map[string][]point, started time.Time, svgName, commit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Open-loop latency, %s\n\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "keel %s; %s; load average at the end %s.\n\n", commit, harness.MachineCPUModel(), harness.LoadAverage())
	fmt.Fprintf(&b, "`go run ./bench/openloop --systems %s --rates %s --seconds %g --warmup %g --conns %d --get-ratio %g --keys %d --datasize %d`\n\n",
		strings.Join(cfg.systems, ","), joinInts(cfg.rates), cfg.seconds, cfg.warmup, cfg.conns, cfg.getRatio, cfg.keys, cfg.data)
	b.WriteString("Every system with appendonly yes, appendfsync everysec. Latency from each request's scheduled send time " +
		"(coordinated omission corrected), in ms; \"answered\" is replies per second in the measured window.\n\n")
	b.WriteString("| system | offered/s | answered/s | GET p50 | GET p99 | GET p99.9 | GET max | SET p50 | SET p99 | SET p99.9 | SET max | note |\n")
	b.WriteString("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |\n")
	for _, name := range cfg.systems {
		for _, pt := range points[name] {
			if pt.err != nil {
				fmt.Fprintf(&b, "| %s | %d | missing | | | | | | | | | %s |\n", name, pt.rate, oneLine(pt.err.Error()))
				continue
			}
			r := pt.res
			var note []string
			if r.lost > 0 {
				note = append(note, fmt.Sprintf("%d lost", r.lost))
			}
			if r.errors > 0 {
				note = append(note, fmt.Sprintf("%d error replies", r.errors))
			}
			if r.achieved() < 0.95*float64(pt.rate) {
				note = append(note, "fell behind")
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, pt.rate, harness.FmtOps(r.achieved()),
				ms(r.quantile(opGet, 50)), ms(r.quantile(opGet, 99)), ms(r.quantile(opGet, 99.9)), ms(r.maxMillis(opGet)),
				ms(r.quantile(opSet, 50)), ms(r.quantile(opSet, 99)), ms(r.quantile(opSet, 99.9)), ms(r.maxMillis(opSet)),
				strings.Join(note, ", "))
		}
	}
	b.WriteString("\n")
	// Where the machine's CPU went: on a machine whose cores the servers
	// share with the load generator, a tail is only the server's when the
	// client sent on time and the machine had CPU to spare.
	b.WriteString("## The machine during each measured window\n\n" +
		"CPU of each server process (the one the load goes to first) and of the load generator, in % of one core; " +
		"the machine's busy share of all its CPUs (anyone's); and how late the generator wrote its requests after their slots " +
		"(part of every latency above, since latencies run from the slot).\n\n")
	b.WriteString("| system | offered/s | server CPU | load generator CPU | machine busy | send lag p50 ms | send lag p99 ms |\n| --- | --: | --- | --: | --: | --: | --: |\n")
	for _, name := range cfg.systems {
		for _, pt := range points[name] {
			if pt.err != nil {
				continue
			}
			w := pt.res.cpu
			server, client := "?", "?"
			if w.ok {
				var each []string
				for _, c := range w.server {
					each = append(each, cores(c))
				}
				server, client = strings.Join(each, " + "), cores(w.client)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, pt.rate, server, client, w.busy(),
				ms(pt.res.lagQuantile(50)), ms(pt.res.lagQuantile(99)))
		}
	}
	b.WriteString("\n")
	// The targets, where the run has the rate.
	if i := slices.Index(cfg.rates, targetRate); i >= 0 {
		fmt.Fprintf(&b, "## The seed's targets at %d/s (p99 GET < %g ms, p99 SET < %g ms)\n\n", targetRate, targetGetP99ms, targetSetP99ms)
		b.WriteString("| system | GET p99 | SET p99 | met | GET p99 / Redis's | SET p99 / Redis's |\n| --- | --: | --: | --- | --: | --: |\n")
		var redis *result
		if pts := points["redis"]; len(pts) > i && pts[i].err == nil {
			redis = pts[i].res
		}
		for _, name := range cfg.systems {
			pts := points[name]
			if len(pts) <= i || pts[i].err != nil {
				fmt.Fprintf(&b, "| %s | missing | | | | |\n", name)
				continue
			}
			r := pts[i].res
			g, s := r.quantile(opGet, 99), r.quantile(opSet, 99)
			met := g < targetGetP99ms && s < targetSetP99ms && r.lost == 0 && r.errors == 0
			gr, sr := "", ""
			if redis != nil {
				gr = harness.FmtRatio(g/redis.quantile(opGet, 99), "×")
				sr = harness.FmtRatio(s/redis.quantile(opSet, 99), "×")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, ms(g), ms(s), map[bool]string{true: "yes", false: "no"}[met], gr, sr)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "![p99 latency against offered load](%s)\n", svgName)
	return b.String()
}

func ms(x float64) string { return harness.FmtMillis(x) }

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.Itoa(x))
	}
	return strings.Join(s, ",")
}

// curveSVG draws p99 latency (log scale) against offered load: one line
// per system and operation, GET solid and SET dashed.
func curveSVG(cfg config, points map[string][]point) string {
	const (
		w, h                     = 720, 440
		left, right, top, bottom = 70, 170, 30, 50
	)
	colors := map[string]string{"keel": "#1f77b4", "keel-3": "#2ca02c", "redis": "#d62728"}
	maxRate := float64(slices.Max(cfg.rates))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pts := range points {
		for _, pt := range pts {
			if pt.err != nil {
				continue
			}
			for o := range opCount {
				v := max(pt.res.quantile(o, 99), 0.01)
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0.1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	px := func(rate float64) float64 { return left + rate/maxRate*(w-left-right) }
	py := func(msv float64) float64 {
		msv = max(msv, lo)
		return top + (1-(math.Log10(msv)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo)))*(h-top-bottom)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">p99 latency against offered load (open loop, %g%% GET)</text>`+"\n", left, cfg.getRatio*100)
	for d := lo; d <= hi*1.0001; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := d * m; v <= hi*1.0001 {
				y := py(v)
				fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, w-right, y)
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n", left-6, y+4, v)
			}
		}
	}
	for _, r := range cfg.rates {
		x := px(float64(r))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, h-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%gk</text>`+"\n", x, h-bottom+16, float64(r)/1000)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">offered load, requests/s</text>`+"\n", (left+w-right)/2, h-12)
	legendY := top + 10
	for _, name := range cfg.systems {
		for o := range opCount {
			var pts []string
			for _, pt := range points[name] {
				if pt.err == nil {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(float64(pt.rate)), py(pt.res.quantile(o, 99))))
				}
			}
			dash := ""
			if o == opSet {
				dash = ` stroke-dasharray="6,4"`
			}
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colors[name], dash, strings.Join(pts, " "))
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", w-right+10, legendY, w-right+40, legendY, colors[name], dash)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s %s p99</text>`+"\n", w-right+46, legendY+4, name, opNames[o])
			legendY += 18
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
