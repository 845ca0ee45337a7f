package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnitTestExamples runs every example test file: they must pass.
func TestUnitTestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/tests/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	code, stdout, stderr := runCLI(t, "", append([]string{"test"}, files...)...)
	require.Equal(t, 0, code, stdout+stderr)
	require.NotContains(t, stdout, "FAIL")
	require.Contains(t, stdout, "SUCCESS: ")
	require.Contains(t, stdout, "  ok    delay cancelled by resolve\n")
}

// TestUnitTestWrongExpectation: a wrong expectation fails the run with
// exit code 1 and a diff naming what was expected and what happened; the
// right test of the same file still passes.
func TestUnitTestWrongExpectation(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "test", "testdata/unittest/wrong.yaml")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stdout, "  ok    right\n")
	require.Contains(t, stdout, "  FAIL  wrong\n"+
		"    at 40m (2026-01-05T10:40:00Z): runs differ (-expected +got):\n"+
		"        clean-disk {instance=\"a\"} succeeded\n"+
		"        clean-disk {instance=\"a\"} succeeded\n"+
		"      - clean-disk {instance=\"a\"} succeeded\n"+
		"      + clean-disk {instance=\"a\"} skipped (rate_limited)\n")
	require.Contains(t, stdout, "FAILED: 1 of 2 tests failed")
}

// TestUnitTestBadFile: every problem of a test file is reported with its
// position, and the exit code is 1.
func TestUnitTestBadFile(t *testing.T) {
	code, _, stderr := runCLI(t, "", "test", "testdata/unittest/bad.yaml")
	require.Equal(t, 1, code)
	for _, want := range []string{
		`bad.yaml:5:14: tests[0].alerts[0].at: invalid offset "soon"`,
		`bad.yaml:6:26: tests[0].alerts[1].status: invalid status "gone": want firing or resolved`,
		`bad.yaml:11:45: tests[0].expect[0].runs[0].outcome: invalid outcome "done"`,
		`bad.yaml:11:51: tests[0].expect[0].runs[0]: unknown field "extra"`,
	} {
		require.Contains(t, stderr, want)
	}
}

// TestUnitTestChecks: what decoding cannot see is reported at its place.
func TestUnitTestChecks(t *testing.T) {
	code, _, stderr := runCLI(t, "", "test", "testdata/unittest/unchecked.yaml")
	require.Equal(t, 1, code)
	for _, want := range []string{
		`unchecked.yaml:3:5: tests[0].name: required`,
		`unchecked.yaml:3:5: tests[0].expect: required: at least one expectation`,
		`unchecked.yaml:6:9: tests[1].alerts[0]: a resolved alert needs starts_at, or a firing alert with the same labels before it`,
		`unchecked.yaml:11:11: tests[3].name: test "twice" is defined twice`,
		`unchecked.yaml:13:9: tests[3].expect[0].runs: required (runs: [] for none)`,
		`unchecked.yaml:18:13: tests[4].expect[0].runs[0].playbook: required`,
	} {
		require.Contains(t, stderr, want)
	}
}

// TestUnitTestFailSteps: fail_steps must name a step that exists.
func TestUnitTestFailSteps(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "test", "testdata/unittest/failsteps.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, `  FAIL  typo`+"\n"+`    fail_steps: no step "clean-disk/clean" (want playbook/step)`)
}
