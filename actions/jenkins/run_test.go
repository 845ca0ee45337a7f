package jenkins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// deployJob is a job with the parameters HOST and REASON.
func deployJob() *fakeJob { return &fakeJob{params: []string{"HOST", "REASON"}, durationMS: 62500} }

// step is a step triggering deploy with HOST from the alert, polling
// every millisecond.
const step = "job: deploy\nparameters: {HOST: '{{ .Labels.instance }}'}\npoll_interval: 1ms\n"

// requireNoToken checks that the token shows nowhere.
func requireNoToken(t *testing.T, res actions.Result, err error, logs *logBuffer) {
	t.Helper()
	require.NotContains(t, fmt.Sprintf("%+v", res), fakeToken)
	if err != nil {
		require.NotContains(t, err.Error(), fakeToken)
	}
	require.NotContains(t, logs.String(), fakeToken)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fake)
		step  string // default: step
		token string // default: fakeToken
		// wantErr is the error Run returns (errors.Is); nil means success.
		wantErr       error
		wantRetryable bool
		// wantText are parts of the error, or of the summary on success;
		// "<base>" stands for the fake's URL.
		wantText []string
		// wantDetails are some of the result's details.
		wantDetails map[string]string
		// wantPost is the escaped path of the one trigger, "" if none.
		wantPost string
		wantForm url.Values
	}{
		{
			name:  "success",
			setup: func(f *fake) { f.queuePolls, f.buildPolls = 2, 2 },
			wantDetails: map[string]string{"outcome": "finished", "result": "SUCCESS", "number": "1", "duration": "1m2.5s",
				"build_url": "<base>/job/deploy/1/", "queue_id": "1", "queue_url": "<base>/queue/item/1/", "server": "default", "job": "deploy"},
			wantText: []string{"job deploy #1 on server default: SUCCESS after 1m2.5s (<base>/job/deploy/1/)"},
			wantPost: "/job/deploy/buildWithParameters",
			wantForm: url.Values{"HOST": {"worker-01"}},
		},
		{
			name:        "unstable succeeds and says so",
			setup:       func(f *fake) { f.jobs["deploy"].result = "UNSTABLE" },
			wantDetails: map[string]string{"outcome": "finished", "result": "UNSTABLE", "number": "1"},
			wantText:    []string{"UNSTABLE after"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:        "failure",
			setup:       func(f *fake) { f.jobs["deploy"].result = "FAILURE" },
			wantErr:     ErrBuildFailed,
			wantText:    []string{"jenkins.build deploy on default: build did not succeed: #1 ended FAILURE, see <base>/job/deploy/1/"},
			wantDetails: map[string]string{"result": "FAILURE", "build_url": "<base>/job/deploy/1/"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:     "aborted",
			setup:    func(f *fake) { f.jobs["deploy"].result = "ABORTED" },
			wantErr:  ErrBuildFailed,
			wantText: []string{"#1 ended ABORTED, see <base>/job/deploy/1/"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "not built",
			setup:    func(f *fake) { f.jobs["deploy"].result = "NOT_BUILT" },
			wantErr:  ErrBuildFailed,
			wantText: []string{"ended NOT_BUILT"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "job not found",
			step:     "job: nope\npoll_interval: 1ms",
			wantErr:  ErrJobNotFound,
			wantText: []string{"jenkins.build nope on default: job not found: GET <base>/job/nope/api/json answered 404 Not Found"},
		},
		{
			name:     "bad token: 401",
			token:    "wrong-token-5e2",
			wantErr:  ErrUnauthorized,
			wantText: []string{`authentication failed for user "bot": GET <base>/api/json answered 401 Unauthorized; check the user and API token`},
		},
		{
			name:     "no Overall/Read: 403",
			setup:    func(f *fake) { f.rootStatus = http.StatusForbidden },
			wantErr:  ErrForbidden,
			wantText: []string{`permission denied for user "bot": GET <base>/api/json answered 403 Forbidden`},
		},
		{
			name:     "no Job/Build: 403",
			setup:    func(f *fake) { f.jobs["deploy"].noBuild = true },
			wantErr:  ErrForbidden,
			wantText: []string{`permission denied for user "bot": POST <base>/job/deploy/buildWithParameters answered 403 Forbidden`},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "disabled job: 409",
			setup:    func(f *fake) { f.jobs["deploy"].disabled = true },
			wantErr:  ErrJobDisabled,
			wantText: []string{"job is disabled or cannot be built: POST <base>/job/deploy/buildWithParameters answered 409 Conflict"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:          "5xx on trigger is retryable",
			setup:         func(f *fake) { f.postStatus = http.StatusServiceUnavailable },
			wantRetryable: true,
			wantText:      []string{"POST <base>/job/deploy/buildWithParameters answered 503 Service Unavailable"},
			wantPost:      "/job/deploy/buildWithParameters",
		},
		{
			name:     "Jenkins scheduled nothing: redirect",
			setup:    func(f *fake) { f.postStatus = http.StatusFound },
			wantErr:  errors.New("any"),
			wantText: []string{`jenkins did not queue the build: POST <base>/job/deploy/buildWithParameters answered 302 Found (Location: ".")`},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "no Location",
			setup:    func(f *fake) { f.locationBase = "-" },
			wantErr:  errors.New("any"),
			wantText: []string{"answered 201 Created: no Location header: expected one naming a queue item"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "cancelled in the queue",
			setup:    func(f *fake) { f.queuePolls, f.cancel = 1, true },
			wantErr:  ErrCancelled,
			wantText: []string{"queue item 1 (<base>/queue/item/1/) was cancelled in the queue"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:        "queue item expired: the build is found by queue id",
			setup:       func(f *fake) { f.expire = true },
			wantDetails: map[string]string{"outcome": "finished", "result": "SUCCESS", "number": "1", "queue_id": "1"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:     "queue item expired without a build",
			setup:    func(f *fake) { f.expire, f.cancel = true, true },
			wantErr:  ErrQueueItemGone,
			wantText: []string{"queue item 1 (<base>/queue/item/1/) has expired and none of the 0 builds Jenkins lists for job deploy came from it"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:        "failed queue polls are polled again",
			setup:       func(f *fake) { f.failQueuePolls = 3 },
			wantDetails: map[string]string{"result": "SUCCESS"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name: "folder job",
			setup: func(f *fake) {
				f.jobs["infra"], f.jobs["infra/disk"] = &fakeJob{folder: true}, &fakeJob{folder: true}
				f.jobs["infra/disk/clean"] = deployJob()
			},
			step:        "job: infra/disk/clean\nparameters: {HOST: '{{ .Labels.instance }}'}\npoll_interval: 1ms",
			wantDetails: map[string]string{"result": "SUCCESS", "job": "infra/disk/clean", "build_url": "<base>/job/infra/job/disk/job/clean/1/"},
			wantPost:    "/job/infra/job/disk/job/clean/buildWithParameters",
			wantForm:    url.Values{"HOST": {"worker-01"}},
		},
		{
			name: "names with spaces",
			setup: func(f *fake) {
				f.jobs["my folder"], f.jobs["my folder/clean disk"] = &fakeJob{folder: true}, deployJob()
			},
			step:        "job: my folder/clean disk\nparameters: {HOST: '{{ .Labels.instance }}'}\npoll_interval: 1ms",
			wantDetails: map[string]string{"result": "SUCCESS", "build_url": "<base>/job/my%20folder/job/clean%20disk/1/"},
			wantPost:    "/job/my%20folder/job/clean%20disk/buildWithParameters",
		},
		{
			name:     "a folder named as the job",
			setup:    func(f *fake) { f.jobs["infra"], f.jobs["infra/clean"] = &fakeJob{folder: true}, deployJob() },
			step:     "job: infra\npoll_interval: 1ms",
			wantErr:  ErrJobNotFound,
			wantText: []string{"job not found: infra is a folder, not a job"},
		},
		{
			name:        "job without parameters",
			setup:       func(f *fake) { f.jobs["plain"] = &fakeJob{} },
			step:        "job: plain\npoll_interval: 1ms",
			wantDetails: map[string]string{"result": "SUCCESS"},
			wantPost:    "/job/plain/build",
			wantForm:    url.Values{},
		},
		{
			name:        "parameterized job without parameters: defaults",
			step:        "job: deploy\npoll_interval: 1ms",
			wantDetails: map[string]string{"result": "SUCCESS"},
			wantPost:    "/job/deploy/buildWithParameters",
			wantForm:    url.Values{},
		},
		{
			name:     "parameters for a job that defines none",
			setup:    func(f *fake) { f.jobs["plain"] = &fakeJob{} },
			step:     "job: plain\nparameters: {HOST: x}\npoll_interval: 1ms",
			wantErr:  ErrParameters,
			wantText: []string{"parameters do not match the job: job plain defines no parameters; Jenkins would drop HOST"},
		},
		{
			name:     "a parameter the job does not define",
			step:     "job: deploy\nparameters: {HOST: x, HOSTNAME: y, AAA: z}\npoll_interval: 1ms",
			wantErr:  ErrParameters,
			wantText: []string{"job deploy does not define AAA, HOSTNAME (it defines HOST, REASON); Jenkins would drop them"},
		},
		{
			name:  "no wait",
			step:  step + "wait: false",
			setup: func(f *fake) { f.queuePolls = 1000 },
			wantDetails: map[string]string{"outcome": "queued", "queue_id": "1", "queue_url": "<base>/queue/item/1/",
				"server": "default", "job": "deploy"},
			wantText: []string{"queued job deploy on server default as queue item 1 (<base>/queue/item/1/); not waiting for the result"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name: "already queued with the same parameters: recorded skip",
			setup: func(f *fake) {
				f.queuePolls = 1000
				f.newItem("deploy", url.Values{"HOST": {"worker-02"}})
				f.newItem("deploy", url.Values{"HOST": {"worker-01"}})
			},
			wantDetails: map[string]string{"outcome": "already_queued", "queue_id": "2", "queue_url": "<base>/queue/item/2/"},
			wantText: []string{"skipped: job deploy is already queued on server default with the same parameters " +
				"(queue item 2, <base>/queue/item/2/); nothing new was triggered"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name: "queued with other parameters: triggered",
			setup: func(f *fake) {
				f.queuePolls = 1000
				f.newItem("deploy", url.Values{"HOST": {"worker-02"}})
			},
			step:        step + "wait: false",
			wantDetails: map[string]string{"outcome": "queued", "queue_id": "2"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:        "crumb",
			setup:       func(f *fake) { f.crumb = true },
			wantDetails: map[string]string{"result": "SUCCESS"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:        "Location on another host: polls go to the configured URL",
			setup:       func(f *fake) { f.locationBase = "http://jenkins.invalid:8080" },
			wantDetails: map[string]string{"result": "SUCCESS", "queue_url": "<base>/queue/item/1/"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:        "relative Location",
			setup:       func(f *fake) { f.locationBase = "/" },
			wantDetails: map[string]string{"result": "SUCCESS"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:     "timeout while building",
			setup:    func(f *fake) { f.buildPolls = 1 << 30 },
			step:     step + "timeout: 50ms",
			wantErr:  ErrGaveUp,
			wantText: []string{"jenkins.build deploy on default: gave up waiting after 50ms; build may still be running at <base>/job/deploy/1/"},
			// The build's number and URL are known.
			wantDetails: map[string]string{"number": "1", "build_url": "<base>/job/deploy/1/"},
			wantPost:    "/job/deploy/buildWithParameters",
		},
		{
			name:    "timeout while queued",
			setup:   func(f *fake) { f.queuePolls = 1 << 30 },
			step:    step + "timeout: 50ms",
			wantErr: ErrGaveUp,
			wantText: []string{"gave up waiting after 50ms; the build is still queued at <base>/queue/item/1/ and may still run " +
				"(" + fakeWhy + ")"},
			wantPost: "/job/deploy/buildWithParameters",
		},
		{
			name:     "timeout while Jenkins answers polls with 503",
			setup:    func(f *fake) { f.failQueuePolls = 1 << 30 },
			step:     step + "timeout: 50ms",
			wantErr:  ErrGaveUp,
			wantText: []string{"the last poll failed: GET <base>/queue/item/1/api/json answered 503 Service Unavailable"},
			wantPost: "/job/deploy/buildWithParameters",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fake) {
				f.jobs["deploy"] = deployJob()
				if tt.setup != nil {
					tt.setup(f)
				}
			})
			token, src := tt.token, tt.step
			if token == "" {
				token = fakeToken
			}
			if src == "" {
				src = step
			}
			if !strings.Contains(src, "timeout:") {
				src += "\ntimeout: 10s" // a regression fails fast, not at go test's timeout
			}
			var logs logBuffer
			a, _, err := build(t, f.servers(token), &logs, src)
			require.NoError(t, err)
			res, err := a.Run(context.Background(), target())
			expand := func(s string) string { return strings.ReplaceAll(s, "<base>", f.srv.URL) }

			requireNoToken(t, res, err, &logs)
			require.NotContains(t, logs.String(), token)
			switch {
			case tt.wantRetryable:
				require.Error(t, err)
				require.True(t, actions.IsRetryable(err), "retryable: %v", err)
			case tt.wantErr != nil:
				require.Error(t, err)
				require.False(t, actions.IsRetryable(err), "permanent: %v", err)
				if tt.wantErr.Error() != "any" {
					require.ErrorIs(t, err, tt.wantErr)
				}
			default:
				require.NoError(t, err)
			}
			for _, want := range tt.wantText {
				if err != nil {
					require.Contains(t, err.Error(), expand(want))
				} else {
					require.Contains(t, res.Summary, expand(want))
				}
			}
			for k, v := range tt.wantDetails {
				require.Equal(t, expand(v), res.Details[k], "details[%s] in %v", k, res.Details)
			}

			posts := f.posts()
			if tt.wantPost == "" {
				require.Empty(t, posts)
				return
			}
			require.Len(t, posts, 1)
			require.Equal(t, tt.wantPost, posts[0].Path)
			require.Empty(t, posts[0].Query)
			require.Equal(t, fakeUser, posts[0].User)
			if tt.wantForm != nil {
				require.Equal(t, tt.wantForm, posts[0].Form)
			}
			for _, r := range f.requests() {
				require.NotContains(t, r.Path, "//", "never gojenkins' double-slash build URLs")
			}
		})
	}
}

// TestRunRequests checks the exact requests of a successful run.
func TestRunRequests(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.crumb = true
		f.queuePolls, f.buildPolls = 1, 1
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step)
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.NoError(t, err)

	var got []string
	for _, r := range f.requests() {
		line := r.Method + " " + r.Path
		if r.Query != "" {
			line += "?" + r.Query
		}
		got = append(got, line)
	}
	tree := "?tree=" + url.QueryEscape(buildTree)
	require.Equal(t, []string{
		"GET /api/json",
		"GET /job/deploy/api/json",
		"GET /queue/api/json?tree=" + url.QueryEscape("items[id]"),
		"GET /crumbIssuer/api/json/api/json",
		"POST /job/deploy/buildWithParameters",
		"GET /queue/item/1/api/json", // waiting
		"GET /queue/item/1/api/json", // left, executable
		"GET /job/deploy/1/api/json" + tree,
		"GET /job/deploy/1/api/json" + tree,
	}, got)
	post := f.posts()[0]
	require.Equal(t, fakeCrumb, post.Header.Get("Jenkins-Crumb"))
	require.Contains(t, post.Header.Get("Cookie"), fakeCookie)
	require.Equal(t, "application/x-www-form-urlencoded", post.Header.Get("Content-Type"))
	for _, r := range f.requests() {
		require.Equal(t, fakeUser, r.User, "%s %s is authenticated", r.Method, r.Path)
	}
}

// TestRunExpiredQueueItemRequests checks the fallback asks for the builds
// by queue id.
func TestRunExpiredQueueItemRequests(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.expire = true
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step)
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.NoError(t, err)
	var fallback []fakeReq
	for _, r := range f.requests() {
		if r.Path == "/job/deploy/api/json" && r.Query != "" {
			fallback = append(fallback, r)
		}
	}
	require.Len(t, fallback, 1)
	require.Equal(t, "tree="+url.QueryEscape("builds[number,queueId]"), fallback[0].Query)
}

// TestDedupOfOwnTrigger: Jenkins merges a trigger into a queued item the
// queue did not list yet (another trigger raced it); the id is known from
// the earlier trigger.
func TestDedupOfOwnTrigger(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.jobs["deploy"].hideQueue = true
		f.queuePolls = 1 << 30
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step+"wait: false")
	require.NoError(t, err)
	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "queued", res.Details["outcome"])
	res, err = a.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "already_queued", res.Details["outcome"])
	require.Equal(t, "1", res.Details["queue_id"])

	other, _, err := build(t, f.servers(fakeToken), nil, "job: deploy\nparameters: {HOST: other}\nwait: false")
	require.NoError(t, err)
	res, err = other.Run(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, "queued", res.Details["outcome"])
	require.Equal(t, "2", res.Details["queue_id"])
}

func TestRunRenderError(t *testing.T) {
	f := newFake(t, nil)
	a, _, err := build(t, f.servers(fakeToken), nil, "job: '{{ .Labels.team }}/deploy'")
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.ErrorContains(t, err, `jenkins.build: job: render "{{ .Labels.team }}/deploy"`)
	_, err = a.Plan(context.Background(), target())
	require.ErrorContains(t, err, `jenkins.build: job: render "{{ .Labels.team }}/deploy"`)

	a, _, err = build(t, f.servers(fakeToken), nil, "job: 'x/{{ .Labels.alertname }}#'")
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.EqualError(t, err, `jenkins.build: job: "x/DiskFull#": Jenkins does not allow "#" in a name`)
	require.Empty(t, f.requests())
}
