package playbooks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// testParams stands in for a real action's parameters: a templated command
// that Validate requires.
type testParams struct {
	Command []actions.Template `yaml:"command"`
	Dir     string             `yaml:"dir"`
}

func (p *testParams) Validate() error {
	if len(p.Command) == 0 {
		return errors.New("command: required")
	}
	return nil
}

// testAction is the action built from testParams; it does nothing.
type testAction struct{ p *testParams }

func (a *testAction) Plan(_ context.Context, t actions.Target) (actions.Plan, error) {
	args, err := actions.RenderAll(a.p.Command, t)
	if err != nil {
		return actions.Plan{}, err
	}
	return actions.Plan{Summary: "run " + strings.Join(args, " ")}, nil
}

func (a *testAction) Run(context.Context, actions.Target) (actions.Result, error) {
	return actions.Result{Summary: "ok"}, nil
}

// testRegistry returns a registry holding only the test "exec" action.
func testRegistry(t testing.TB) *actions.Registry {
	t.Helper()
	reg := actions.NewRegistry()
	spec := actions.Typed("exec", "runs a command (test double)", "",
		func() *testParams { return &testParams{Dir: "/"} },
		func(p *testParams) (actions.Action, error) { return &testAction{p: p}, nil })
	require.NoError(t, reg.Register(spec))
	return reg
}
