package actions

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTouchedRoundTrip: what FormatTouched writes into a step's details
// reads back the same, each object once; a namespace-less object and an
// unknown UID survive; a line of another shape is an error.
func TestTouchedRoundTrip(t *testing.T) {
	pod := ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-7d9f-a", UID: "0b6e-11"}
	web := ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}
	node := ObjectRef{APIVersion: "v1", Kind: "Node", Name: "kwok-node-0", UID: "n-1"}

	s := FormatTouched([]ObjectRef{pod, web, pod, node})
	require.Equal(t, "v1 Pod shop/web-7d9f-a 0b6e-11\napps/v1 Deployment shop/web -\nv1 Node kwok-node-0 n-1", s)
	got, err := ParseTouched(s)
	require.NoError(t, err)
	require.Equal(t, []ObjectRef{pod, web, node}, got)

	got, err = ParseTouched("")
	require.NoError(t, err)
	require.Empty(t, got)

	got, err = ParseTouched(pod.String() + "\nPod shop/web")
	require.ErrorContains(t, err, `touched object "Pod shop/web"`)
	require.Equal(t, []ObjectRef{pod}, got, "the lines before the bad one")
	_, err = ParseTouched("v1 Pod shop/ u")
	require.ErrorContains(t, err, "no name")
}
