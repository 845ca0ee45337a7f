package config

import (
	"strings"
	"testing"
)

// FuzzParse checks that no config file makes Parse panic, and that every
// error is one line naming the file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"receiver: {insecure: true}\nstorage: {retention: 7d}\n",
		"receiver:\n  bearer_tokn: x\nengine: {workers: 0}\nplaybooks: {files: ['[', a]}\n",
		"receiver: {insecure: true}\nalertmanager:\n  url: http://am:9093\n  http_config: {tls_config: {ca: x, ca_file: y}, http_headers: {X-A: {values: [a]}}}\n",
		"jenkins: {a: ~, b: [1], c: {url: 'ftp://u:p@x'}}\n",
		"receiver: {insecure: true}\nalertmanager: {urls: [http://a:9093, 'x', http://a:9093, {h: 1}], reconcile_interval: 0s}\n",
		"- 1\n- 2\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse("c.yml", []byte(src))
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "c.yml") {
				t.Fatalf("error line %q does not name the file", line)
			}
		}
	})
}
