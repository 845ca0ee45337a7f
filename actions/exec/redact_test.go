//go:build unix

package exec

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// TestSecretEnvNeverShown sets variables whose names look secret through
// env: the plan shows them as <secret>, and the result and error of a
// command that prints them show <secret> instead of their values. A
// variable whose name does not look secret is shown.
func TestSecretEnvNeverShown(t *testing.T) {
	secrets := map[string]string{"FOO_PASSWORD": "pw-VALUE", "API_TOKEN": "tok-VALUE", "CLIENT_SECRET": "sec-VALUE", "SSH_KEY": "key-VALUE"}
	a := newAction(t, func(p *Params) {
		p.Command = tmpls("/bin/sh", "-c", `echo "$FOO_PASSWORD $API_TOKEN"; echo "$CLIENT_SECRET $SSH_KEY $REASON" >&2; exit 3`)
		p.Env = map[string]actions.Template{"REASON": actions.MustTemplate("disk-full")}
		for k, v := range secrets {
			p.Env[k] = actions.MustTemplate(v)
		}
	})
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	params := map[string]string{}
	for _, p := range plan.Params {
		params[p.Name] = p.Value
	}
	for k := range secrets {
		require.Equal(t, "<secret>", params["env."+k], k)
	}
	require.Equal(t, "disk-full", params["env.REASON"])

	res, runErr := a.Run(context.Background(), target())
	require.ErrorContains(t, runErr, "exit status 3")
	require.Equal(t, "<secret> <secret>\n", res.Details["stdout"])
	require.Equal(t, "<secret> <secret> disk-full\n", res.Details["stderr"])
	shown := fmt.Sprintf("%v\n%#v\n%#v", runErr, res, plan)
	for _, v := range secrets {
		require.NotContains(t, shown, v)
	}
}
