// Package mixin holds no code: this folder is the monitoring mixin for
// selfheal itself (Prometheus alerting and recording rules, a Grafana
// dashboard), and its tests check them with promtool and against the metric
// names selfheal declares.
package mixin
