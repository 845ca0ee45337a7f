package mixin

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// ruleFiles are the Prometheus rule files of the mixin.
var ruleFiles = []string{"alerts.yaml", "rules.yaml"}

// promtool returns the path of promtool, which `make deps` installs with
// Debian's prometheus package. Only -short may do without it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if testing.Short() {
			t.Skip("promtool is not installed (-short)")
		}
		t.Fatalf("promtool is not installed; run `make deps` (apt-get install prometheus): %v", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCheckRules(t *testing.T) {
	for _, f := range ruleFiles {
		t.Run(f, func(t *testing.T) { runPromtool(t, "check", "rules", f) })
	}
}

// TestAlertsFire runs the unit tests of alerts_test.yaml: which alerts
// fire, when, with which labels and rendered annotations.
func TestAlertsFire(t *testing.T) {
	runPromtool(t, "test", "rules", "alerts_test.yaml")
}

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

const datasourceVar = "${datasource}"

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

// usesVar reports whether ds is the Prometheus data source variable.
func usesVar(ds *datasource) bool {
	return ds != nil && ds.Type == "prometheus" && ds.UID == datasourceVar
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion >= 36", d.Title, d.UID, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Name == "datasource" && string(v.Query) != `"prometheus"` {
			t.Errorf("variable datasource: query %s, want \"prometheus\"", v.Query)
		}
		if v.Type == "query" && !usesVar(v.Datasource) {
			t.Errorf("variable %s: datasource %+v, want %s", v.Name, v.Datasource, datasourceVar)
		}
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("variables %v: want datasource (type datasource) and instance (type query)", vars)
	}
	data := 0
	ids := map[int]string{}
	for i, p := range d.Panels {
		name := fmt.Sprintf("panels[%d] %q", i, p.Title)
		if p.Title == "" {
			t.Errorf("%s: no title", name)
		}
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("%s: id %d is also %s's", name, p.ID, prev)
		}
		ids[p.ID] = name
		if p.Type == "row" { // a row only groups the panels below it
			if len(p.Targets) != 0 {
				t.Errorf("%s: a row with targets", name)
			}
			continue
		}
		data++
		if !usesVar(p.Datasource) {
			t.Errorf("%s: datasource %+v, want the %s variable", name, p.Datasource, datasourceVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", name)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s target %s: empty expr", name, tg.RefID)
			}
			if !usesVar(tg.Datasource) {
				t.Errorf("%s target %s: datasource %+v, want %s", name, tg.RefID, tg.Datasource, datasourceVar)
			}
		}
	}
	if data < 10 {
		t.Errorf("%d panels with queries, want the mixin's (at least 10)", data)
	}
}

// grafanaVars stand for the dashboard's variables, so that promtool can
// parse its queries.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$inbox_size", "10000")

// TestDashboardQueriesParse has promtool parse every query of the
// dashboard, written as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard_panel_%d_%s", i, tg.RefID), Expr: grafanaVars.Replace(tg.Expr)})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", f)
}

// ruleExprs returns the expressions of a rule file.
func ruleExprs(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// selectorRE finds the series every query selects: selfheal's metrics and up.
var selectorRE = regexp.MustCompile(`\b(selfheal_[a-zA-Z0-9_]+|up)\b(\{[^}]*)?`)

// TestJobSelector checks that every series selected, in the rules and the
// dashboard, starts with job="selfheal", the one selector README.md says to
// change.
func TestJobSelector(t *testing.T) {
	exprs := map[string][]string{}
	for _, f := range ruleFiles {
		exprs[f] = ruleExprs(t, f)
	}
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			exprs["dashboard.json"] = append(exprs["dashboard.json"], tg.Expr)
		}
	}
	for file, es := range exprs {
		for _, e := range es {
			for _, m := range selectorRE.FindAllStringSubmatch(e, -1) {
				if !strings.HasPrefix(m[2], `{job="selfheal"`) {
					t.Errorf("%s: %s in %q: want the selector to start with job=\"selfheal\"", file, m[0], e)
				}
			}
		}
	}
}

// metricRE finds selfheal's metric names in any text, recording rule names
// (job:selfheal_engine_runs_total:rate5m) included.
var metricRE = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_])(selfheal_[a-zA-Z0-9_]+)`)

// TestMetricsExist checks that every selfheal_* name in the mixin (queries,
// annotations, descriptions) is a metric selfheal declares, or a series of
// one of its histograms or summaries.
func TestMetricsExist(t *testing.T) {
	declared := declaredMetrics(t, moduleRoot(t))
	for _, want := range []string{"selfheal_engine_runs_total", "selfheal_inbox_depth", "selfheal_config_last_reload_successful", "selfheal_build_info"} {
		if _, ok := declared[want]; !ok {
			t.Fatalf("%s is not among the declared metrics %v: the source scan misses declarations", want, slices.Sorted(maps.Keys(declared)))
		}
	}
	for _, f := range append(slices.Clone(ruleFiles), "dashboard.json") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range metricRE.FindAllStringSubmatch(string(data), -1) {
			name := m[1]
			if seen[name] {
				continue
			}
			seen[name] = true
			if !exported(declared, name) {
				t.Errorf("%s: %s is not a metric selfheal declares", f, name)
			}
		}
	}
}

// exported reports whether name is a series selfheal exposes: a declared
// metric, or a histogram's _bucket, _sum, _count, a summary's _sum, _count.
func exported(declared map[string]metricKind, name string) bool {
	if _, ok := declared[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch declared[base] {
		case histogram:
			return true
		case summary:
			return suffix != "_bucket"
		}
	}
	return false
}

type metricKind int

const (
	other metricKind = iota + 1
	histogram
	summary
)

const (
	promPkg     = "github.com/prometheus/client_golang/prometheus"
	versionPkg  = "github.com/prometheus/client_golang/prometheus/collectors/version"
	versionName = "_build_info" // version.NewCollector(ns) exports ns + "_build_info"
)

// moduleRoot is the folder of go.mod above this one.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// declaredMetrics parses the module's non-test Go files and returns the
// names of the metrics they declare: the Namespace, Subsystem and Name of
// prometheus.*Opts literals composed as prometheus.BuildFQName does, the
// first argument of prometheus.NewDesc and BuildFQName, and the namespace
// of the version collector. Names that are not string literals are not
// resolved, so a mixin using them fails here rather than passing unchecked.
func declaredMetrics(t *testing.T, root string) map[string]metricKind {
	t.Helper()
	out := map[string]metricKind{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		collect(f, out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// collect adds the metrics f declares to out.
func collect(f *ast.File, out map[string]metricKind) {
	imports := map[string]string{} // local name → import path
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = p
	}
	pkgSel := func(e ast.Expr) (pkg, sel string) {
		s, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", ""
		}
		x, ok := s.X.(*ast.Ident)
		if !ok {
			return "", ""
		}
		return imports[x.Name], s.Sel.Name
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			pkg, typ := pkgSel(n.Type)
			if pkg != promPkg || !strings.HasSuffix(typ, "Opts") {
				return true
			}
			var parts [3]string // Namespace, Subsystem, Name
			for _, el := range n.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				if key == nil {
					continue
				}
				if i := slices.Index([]string{"Namespace", "Subsystem", "Name"}, key.Name); i >= 0 {
					parts[i] = stringLit(kv.Value)
				}
			}
			if name := fqName(parts[0], parts[1], parts[2]); name != "" {
				out[name] = kindOf(typ)
			}
		case *ast.CallExpr:
			pkg, fn := pkgSel(n.Fun)
			args := make([]string, len(n.Args))
			for i, a := range n.Args {
				args[i] = stringLit(a)
			}
			switch {
			case pkg == promPkg && fn == "NewDesc" && len(args) > 0 && args[0] != "":
				if _, ok := out[args[0]]; !ok {
					out[args[0]] = other
				}
			case pkg == promPkg && fn == "BuildFQName" && len(args) == 3:
				if name := fqName(args[0], args[1], args[2]); name != "" {
					if _, ok := out[name]; !ok {
						out[name] = other
					}
				}
			case pkg == versionPkg && fn == "NewCollector" && len(args) == 1 && args[0] != "":
				out[args[0]+versionName] = other
			}
		}
		return true
	})
}

// fqName joins the non-empty parts with "_", as prometheus.BuildFQName;
// no name, no metric.
func fqName(namespace, subsystem, name string) string {
	if name == "" {
		return ""
	}
	var parts []string
	for _, p := range []string{namespace, subsystem, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

func kindOf(optsType string) metricKind {
	switch optsType {
	case "HistogramOpts":
		return histogram
	case "SummaryOpts":
		return summary
	}
	return other
}

// stringLit returns the value of a string literal, or "" for anything else.
func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}
