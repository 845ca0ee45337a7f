// Package jenkins implements the jenkins.build action through gojenkins.
package jenkins

import _ "github.com/bndr/gojenkins"
