package scenarios

import (
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/sim"
)

// SweepIndexFile is the HTML summary a sweep writes into its --out folder.
const SweepIndexFile = "index.html"

// slowestShown is how many of the slowest seeds the HTML summary lists.
const slowestShown = 10

// SweepSummary is what the HTML summary shows: every seed the sweep
// judged (resumed ones included) and how the sweep ran.
type SweepSummary struct {
	Params SweepParams
	// Scenarios is the sweep's scenarios, in the order the table lists them.
	Scenarios []string
	Results   []SeedResult
	// Planned is how many seeds the sweep meant to run.
	Planned int
	// Wall is the time this invocation ran; Resumed how many seeds an
	// earlier one had finished.
	Wall    time.Duration
	Resumed int
	// Stopped says why the sweep ended before its last seed ("" when it
	// ran them all).
	Stopped string
	// ReplayCommand gives a failing seed's replay command.
	ReplayCommand func(SeedResult) string
}

type htmlScenario struct {
	Name                      string
	Seeds, Passed, Failed     int
	Unknown                   int
	Faults, Ops               int64
	Sim                       string
	Markers                   []htmlCount
	MarkerCounts              []int // per sim.Markers, for the matrix
	FailedClass, UnknownClass string
}

type htmlCount struct {
	Name string
	N    int
}

type htmlSeed struct {
	Scenario string
	Seed     uint64
	Wall     string
	Sim      string
	Passed   bool
	Failure  string
	More     int
	Link     string
	Replay   string
	Mix      string
}

type htmlPage struct {
	Title                    string
	Params                   SweepParams
	Done, Planned, Resumed   int
	Failed                   int
	Wall, Generated, Stopped string
	Scenarios                []htmlScenario
	Markers                  []string
	Never                    []string
	Slowest                  []htmlSeed
	Failures                 []htmlSeed
}

// WriteSweepHTML writes dir/index.html, through a temporary file and a
// rename so a reader never sees half a page.
func WriteSweepHTML(dir string, s SweepSummary) error {
	page := buildPage(dir, s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrapf(err, "create %s", dir)
	}
	path := filepath.Join(dir, SweepIndexFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return errors.Wrapf(err, "create %s", tmp)
	}
	if err := sweepTemplate.Execute(f, page); err != nil {
		f.Close()
		os.Remove(tmp)
		return errors.Wrapf(err, "write %s", tmp)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return errors.Wrapf(err, "close %s", tmp)
	}
	return errors.Wrapf(os.Rename(tmp, path), "rename %s", tmp)
}

func buildPage(dir string, s SweepSummary) htmlPage {
	p := htmlPage{
		Title: "keel sim run --scenario " + s.Params.Scenario + " --seeds " + s.Params.Seeds, Params: s.Params,
		Done: len(s.Results), Planned: s.Planned, Resumed: s.Resumed, Stopped: s.Stopped,
		Wall: s.Wall.Round(time.Millisecond).String(), Generated: time.Now().UTC().Format(time.RFC3339),
		Markers: sim.Markers,
	}
	if s.Params.Swarm {
		p.Title += " --swarm"
	}
	rows := map[string]*htmlScenario{}
	simTime := map[string]time.Duration{}
	markerRuns := map[string]map[string]int{}
	for _, name := range s.Scenarios {
		rows[name] = &htmlScenario{Name: name}
	}
	for _, r := range s.Results {
		row := rows[r.Scenario]
		if row == nil { // a scenario the caller did not list: show it anyway
			row = &htmlScenario{Name: r.Scenario}
			rows[r.Scenario] = row
			s.Scenarios = append(s.Scenarios, r.Scenario)
		}
		row.Seeds++
		row.Faults += r.FaultsTotal
		row.Ops += r.Ops
		simTime[r.Scenario] += time.Duration(r.SimNanos)
		if r.Passed {
			row.Passed++
		} else {
			row.Failed++
			p.Failed++
		}
		if r.Lin == "unknown" {
			row.Unknown++
		}
		for m, n := range r.Markers {
			if n > 0 {
				if markerRuns[r.Scenario] == nil {
					markerRuns[r.Scenario] = map[string]int{}
				}
				markerRuns[r.Scenario][m]++
			}
		}
	}
	reached := map[string]bool{}
	for _, name := range s.Scenarios {
		row := rows[name]
		row.Sim = simTime[name].Round(time.Millisecond).String()
		if row.Failed > 0 {
			row.FailedClass = "bad"
		}
		if row.Unknown > 0 {
			row.UnknownClass = "bad"
		}
		for _, m := range sim.Markers {
			n := markerRuns[name][m]
			row.MarkerCounts = append(row.MarkerCounts, n)
			if n > 0 {
				row.Markers = append(row.Markers, htmlCount{m, n})
				reached[m] = true
			}
		}
		p.Scenarios = append(p.Scenarios, *row)
	}
	for _, m := range sim.Markers {
		if !reached[m] {
			p.Never = append(p.Never, m)
		}
	}

	seed := func(r SeedResult) htmlSeed {
		h := htmlSeed{Scenario: r.Scenario, Seed: r.Seed, Passed: r.Passed, Mix: r.SwarmMix,
			Wall: time.Duration(r.WallNanos).Round(time.Millisecond).String(),
			Sim:  time.Duration(r.SimNanos).Round(time.Millisecond).String()}
		if len(r.Failures) > 0 {
			h.Failure, _, _ = strings.Cut(r.Failures[0], "\n")
			h.More = max(r.FailuresTotal, len(r.Failures)) - 1
		}
		if r.ReportDir != "" {
			h.Link = reportLink(dir, r.ReportDir)
		}
		if s.ReplayCommand != nil {
			h.Replay = s.ReplayCommand(r)
		}
		return h
	}
	byWall := append([]SeedResult(nil), s.Results...)
	sort.SliceStable(byWall, func(i, j int) bool { return byWall[i].WallNanos > byWall[j].WallNanos })
	for _, r := range byWall[:min(slowestShown, len(byWall))] {
		p.Slowest = append(p.Slowest, seed(r))
	}
	var failed []SeedResult
	for _, r := range s.Results {
		if !r.Passed {
			failed = append(failed, r)
		}
	}
	sort.SliceStable(failed, func(i, j int) bool {
		if failed[i].Scenario != failed[j].Scenario {
			return failed[i].Scenario < failed[j].Scenario
		}
		return failed[i].Seed < failed[j].Seed
	})
	for _, r := range failed {
		p.Failures = append(p.Failures, seed(r))
	}
	return p
}

// reportLink is a report folder's address from dir's index.html: relative
// when the folder is under dir (the page still works once the folder is
// copied elsewhere, or served), else the absolute path (no file:
// scheme: html/template lets only http, https and mailto through).
func reportLink(dir, report string) string {
	rel, err := filepath.Rel(dir, report)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		if abs, err := filepath.Abs(report); err == nil {
			return filepath.ToSlash(abs) + "/"
		}
		return filepath.ToSlash(report) + "/"
	}
	return filepath.ToSlash(rel) + "/"
}

// html/template escapes every value by its context (text, attribute, URL),
// so a failure message or a scenario name cannot write markup.
var sweepTemplate = template.Must(template.New("sweep").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.bad { background: #fdd; font-weight: bold; }
.zero { color: #bbb; }
code { font-size: 90%; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Done}} of {{.Planned}} seeds judged, {{.Failed}} failed{{if .Resumed}} ({{.Resumed}} of them by an earlier run this one resumed){{end}}; this run's wall time {{.Wall}}; written {{.Generated}}.</p>
{{if .Stopped}}<p class="bad">The sweep stopped early: {{.Stopped}}.</p>{{end}}

<h2>Scenarios by outcome</h2>
<table id="scenarios">
<tr><th>scenario</th><th>seeds</th><th>passed</th><th>failed</th><th>linearizability unknown</th><th>sim time</th><th>ops</th><th>faults</th></tr>
{{range .Scenarios}}<tr class="scenario" data-scenario="{{.Name}}"><td>{{.Name}}</td><td>{{.Seeds}}</td><td>{{.Passed}}</td><td class="{{.FailedClass}}">{{.Failed}}</td><td class="{{.UnknownClass}}">{{.Unknown}}</td><td>{{.Sim}}</td><td>{{.Ops}}</td><td>{{.Faults}}</td></tr>
{{end}}</table>

<h2>Failures</h2>
{{if .Failures}}<table id="failures">
<tr><th>scenario</th><th>seed</th><th>first failure</th><th>report</th><th>replay</th></tr>
{{range .Failures}}<tr class="failure"><td>{{.Scenario}}</td><td>{{.Seed}}</td><td class="text">{{.Failure}}{{if .More}} (and {{.More}} more){{end}}{{if .Mix}}<br>mix: {{.Mix}}{{end}}</td><td class="text">{{if .Link}}<a href="{{.Link}}">{{.Link}}</a>{{else}}none written{{end}}</td><td class="text"><code>{{.Replay}}</code></td></tr>
{{end}}</table>
{{else}}<p>No seed failed.</p>
{{end}}
<h2>Markers reached</h2>
<p>Seeds that passed each rare state, of the scenario's seeds.{{if .Never}} No seed reached: {{range $i, $m := .Never}}{{if $i}}, {{end}}<code>{{$m}}</code>{{end}}.{{end}}</p>
<table id="markers">
<tr><th>scenario</th>{{range .Markers}}<th><code>{{.}}</code></th>{{end}}</tr>
{{range .Scenarios}}{{$seeds := .Seeds}}<tr><td>{{.Name}}</td>{{range .MarkerCounts}}<td{{if not .}} class="zero"{{end}}>{{.}}/{{$seeds}}</td>{{end}}</tr>
{{end}}</table>

<h2>Slowest seeds</h2>
<table id="slowest">
<tr><th>scenario</th><th>seed</th><th>wall</th><th>sim time</th><th>outcome</th></tr>
{{range .Slowest}}<tr><td>{{.Scenario}}</td><td>{{.Seed}}</td><td>{{.Wall}}</td><td>{{.Sim}}</td><td class="text{{if not .Passed}} bad{{end}}">{{if .Passed}}passed{{else}}failed{{end}}</td></tr>
{{end}}</table>
</body>
</html>
`))
