package playbooks

import (
	"strings"
	"testing"
	"time"
)

func TestZZDeep(t *testing.T) {
	reg := testRegistry(t)
	for _, s := range []string{
		"playbooks: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"playbooks:\n  - name: a\n    match: [a=b]\n    steps:\n      - name: s\n        action: exec\n        with: {command: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}\n",
		"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nplaybooks:\n  - name: a\n    match: *g\n    steps: [{name: s, action: exec, with: {command: *g}}]\n",
	} {
		st := time.Now()
		_, err := Parse(reg, "f", []byte(s))
		e := err.Error()
		if len(e) > 300 { e = e[:300] }
		t.Log(time.Since(st), len(err.Error()), e)
	}
}
