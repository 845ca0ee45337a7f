package actions

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

type describeParams struct {
	Command []Template          `yaml:"command" doc:"argv"`
	Env     map[string]Template `yaml:"env"`
	Timeout model.Duration      `yaml:"timeout" doc:"how long"`
	Wait    *bool               `yaml:"wait"`
	Count   int                 `yaml:"count,omitempty"`
}

func (describeParams) Validate() error { return nil }

func TestDescribe(t *testing.T) {
	yes := true
	s := Typed("t", "", "", func() *describeParams {
		return &describeParams{Timeout: model.Duration(time.Minute), Wait: &yes, Env: map[string]Template{"A": MustTemplate("{{ .Run }}")}}
	}, func(*describeParams) (Action, error) { return nil, nil })
	require.Equal(t, []ParamDoc{
		{Name: "command", Type: "list of template", Doc: "argv"},
		{Name: "env", Type: "map of template", Default: "{A: {{ .Run }}}"},
		{Name: "timeout", Type: "duration", Default: "1m", Doc: "how long"},
		{Name: "wait", Type: "boolean", Default: "true"},
		{Name: "count", Type: "integer"},
	}, Describe(s))
}
