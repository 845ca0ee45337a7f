package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadGossipKey: a key file holds 16, 24 or 32 bytes in base64;
// anything else is refused, and the key never shows in the error.
func TestReadGossipKey(t *testing.T) {
	dir := t.TempDir()
	key := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		content string
		want    string
		err     string
	}{
		{base64.StdEncoding.EncodeToString([]byte(key)) + "\n", key, ""},
		{base64.StdEncoding.EncodeToString([]byte(key[:16])), key[:16], ""},
		{base64.StdEncoding.EncodeToString([]byte("too-short")), "", "got 9 bytes"},
		{"not base64 at all!", "", "not base64"},
	} {
		path := filepath.Join(dir, "key")
		require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
		got, err := readGossipKey(path)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			require.False(t, strings.Contains(err.Error(), strings.TrimSpace(tc.content)), "the key is not in the error")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, string(got))
	}
	_, err := readGossipKey(filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "--cluster.gossip-key-file")
}
