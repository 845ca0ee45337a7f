package promwal

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestRBACExampleMatchesRules keeps examples/kubernetes/rbac-wal-cleanup.yaml
// equal to the rules the lab tests run with.
func TestRBACExampleMatchesRules(t *testing.T) {
	data, err := os.ReadFile("../../examples/kubernetes/rbac-wal-cleanup.yaml")
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(data), "\n---\n")
	var role rbacv1.Role
	require.NoError(t, yaml.Unmarshal([]byte(first), &role))
	require.Equal(t, RBACRules(), role.Rules)
}
