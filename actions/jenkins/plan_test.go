package jenkins

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

func TestPlan(t *testing.T) {
	a, _, err := build(t, exampleServers(), nil, "job: a/b\nparameters: {HOST: '{{ .Labels.instance }}'}")
	require.NoError(t, err)
	p, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "trigger Jenkins job a/b on server default (https://jenkins.example) with HOST=worker-01 and wait up to 20m", p.Summary)
	require.Equal(t, []actions.Param{
		{Name: "server", Value: "default"},
		{Name: "server_url", Value: "https://jenkins.example"},
		{Name: "user", Value: "bot"},
		{Name: "api_token", Value: "<secret>"},
		{Name: "job", Value: "a/b"},
		{Name: "parameters.HOST", Value: "worker-01"},
		{Name: "wait", Value: "true"},
		{Name: "timeout", Value: "20m"},
		{Name: "poll_interval", Value: "5s"},
	}, p.Params)
	require.Equal(t, []string{
		"GET https://jenkins.example/api/json: connection and credentials check (gojenkins Init), once per server while the daemon runs",
		"GET https://jenkins.example/job/a/job/b/api/json: the job's parameter definitions; " +
			"parameters the job does not define fail the step here, as Jenkins would drop them",
		"GET https://jenkins.example/queue/api/json?tree=items[id]: the ids already queued, to recognise Jenkins merging the trigger into one of them",
		"GET https://jenkins.example/crumbIssuer/api/json/api/json: gojenkins asks for a CSRF crumb at this doubled path; " +
			"a 404 sends none, which an API token does not need",
		"POST https://jenkins.example/job/a/job/b/buildWithParameters with the form body HOST=worker-01: " +
			"expects 201 Created and Location: .../queue/item/<id>/ (only the id is used)",
		"if a build with the same parameters is already queued, Jenkins answers with its queue item: " +
			"nothing new is triggered and the step succeeds with outcome already_queued",
		"GET https://jenkins.example/queue/item/<id>/api/json every 5s until the item leaves the queue; cancelled in the queue fails the step",
		"if the queue item has expired (404): GET https://jenkins.example/job/a/job/b/api/json?tree=builds[number,queueId] " +
			"to find the build by its queue id",
		"GET https://jenkins.example/job/a/job/b/<number>/api/json?tree=number,building,result,duration,timestamp,queueId every 5s " +
			"until building is false",
		"SUCCESS and UNSTABLE succeed (UNSTABLE is recorded as result UNSTABLE); FAILURE, ABORTED and NOT_BUILT fail the step; " +
			"after 20m of waiting the step fails and the build may still run",
		"401, 403, 404 and 409 (a disabled job) fail the step; transport errors, timeouts, 408, 429 and 5xx may be retried",
		`every request authenticates as "bot" with an API token (basic auth) and times out after 15s`,
	}, p.Details)
}

func TestPlanVariants(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		wantSummary string
		wantDetail  string // one of the details
		wantParams  []actions.Param
	}{
		{
			name:        "no wait, several parameters, a secret one",
			src:         "server: legacy\njob: my folder/clean disk\nparameters: {HOST: '{{ .Labels.instance }}', REASON: '{{ .Annotations.summary }}', DB_PASSWORD: hunter2}\nwait: false",
			wantSummary: `trigger Jenkins job my folder/clean disk on server legacy (https://old.example/jenkins) with DB_PASSWORD=<secret>, HOST=worker-01, REASON="disk 95% full", without waiting for the result`,
			wantDetail:  "POST https://old.example/jenkins/job/my%20folder/job/clean%20disk/buildWithParameters with the form body DB_PASSWORD=<secret>&HOST=worker-01&REASON=disk+95%25+full: expects 201 Created and Location: .../queue/item/<id>/ (only the id is used)",
			wantParams: []actions.Param{
				{Name: "server", Value: "legacy"},
				{Name: "server_url", Value: "https://old.example/jenkins"},
				{Name: "user", Value: "bot"},
				{Name: "api_token", Value: "<secret>"},
				{Name: "job", Value: "my folder/clean disk"},
				{Name: "parameters.DB_PASSWORD", Value: "<secret>"},
				{Name: "parameters.HOST", Value: "worker-01"},
				{Name: "parameters.REASON", Value: "disk 95% full"},
				{Name: "wait", Value: "false"},
			},
		},
		{
			name:        "no parameters",
			src:         "job: deploy\ntimeout: 1h",
			wantSummary: "trigger Jenkins job deploy on server default (https://jenkins.example) and wait up to 1h",
			wantDetail: "POST https://jenkins.example/job/deploy/build with an empty body (https://jenkins.example/job/deploy/buildWithParameters " +
				"if the job defines parameters: their defaults apply): expects 201 Created and Location: .../queue/item/<id>/ (only the id is used)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, err := build(t, exampleServers(), nil, tt.src)
			require.NoError(t, err)
			p, err := a.Plan(context.Background(), target())
			require.NoError(t, err)
			require.Equal(t, tt.wantSummary, p.Summary)
			require.Contains(t, p.Details, tt.wantDetail)
			if tt.wantParams != nil {
				require.Equal(t, tt.wantParams, p.Params)
			}
			out, err := json.Marshal(p)
			require.NoError(t, err)
			require.NotContains(t, string(out), fakeToken)
			require.NotContains(t, string(out), "hunter2")
		})
	}
}

// TestPlanMatchesRun: the trigger Run sends is the one Plan announced,
// and Plan sends nothing.
func TestPlanMatchesRun(t *testing.T) {
	tests := []struct {
		name string
		job  string
		src  string
	}{
		{name: "job", job: "deploy", src: "job: deploy\nparameters: {HOST: '{{ .Labels.instance }}'}"},
		{name: "folder and spaces", job: "my folder/clean disk",
			src: "job: 'my folder/clean {{ .Labels.alertname | reReplaceAll \"Full\" \"\" | toLower }}'\n" +
				"parameters: {HOST: '{{ .Labels.instance }}', REASON: '{{ .Annotations.summary }} & more'}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fake) {
				f.jobs["deploy"] = deployJob()
				f.jobs["my folder"], f.jobs["my folder/clean disk"] = &fakeJob{folder: true}, deployJob()
			})
			a, _, err := build(t, f.servers(fakeToken), nil, tt.src+"\npoll_interval: 1ms")
			require.NoError(t, err)
			plan, err := a.Plan(context.Background(), target())
			require.NoError(t, err)
			require.Empty(t, f.requests(), "Plan sends nothing")

			_, err = a.Run(context.Background(), target())
			require.NoError(t, err)
			posts := f.posts()
			require.Len(t, posts, 1)

			params := map[string]string{}
			for _, p := range plan.Params {
				params[p.Name] = p.Value
			}
			require.Equal(t, tt.job, params["job"])
			require.Equal(t, f.srv.URL, params["server_url"])
			var postLine string
			for _, d := range plan.Details {
				if strings.HasPrefix(d, "POST ") {
					postLine = d
				}
			}
			require.Equal(t, f.srv.URL+posts[0].Path, strings.Fields(postLine)[1], "the plan's POST URL")
			want := url.Values{}
			for name, v := range params {
				if n, ok := strings.CutPrefix(name, "parameters."); ok {
					want.Set(n, v)
				}
			}
			require.NotEmpty(t, want)
			require.Equal(t, want, posts[0].Form, "the plan's parameters")
			require.Contains(t, postLine, "with the form body "+want.Encode()+":")
		})
	}
}
