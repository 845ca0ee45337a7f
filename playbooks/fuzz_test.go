package playbooks

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzPlaybooks feeds arbitrary files to Parse: it must never panic or hang,
// and what it accepts must be usable by the engine.
func FuzzPlaybooks(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range append(seeds, more...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		pbs, err := Parse(reg, "fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, pb := range pbs {
			if !nameRE.MatchString(pb.Name) {
				t.Fatalf("accepted invalid name %q", pb.Name)
			}
			if len(pb.Matchers) == 0 || len(pb.Steps) == 0 {
				t.Fatalf("playbook %q: %d matchers, %d steps", pb.Name, len(pb.Matchers), len(pb.Steps))
			}
			if !pb.On.Valid() || pb.Pos.Line == 0 || len(pb.Revision) != 12 {
				t.Fatalf("playbook %q: on %q, pos %v, revision %q", pb.Name, pb.On, pb.Pos, pb.Revision)
			}
			for _, s := range pb.Steps {
				if !nameRE.MatchString(s.Name) || s.Action == nil || s.Params == nil || s.Timeout <= 0 ||
					s.Retries < 0 || s.Retries > MaxRetries {
					t.Fatalf("playbook %q: bad step %+v", pb.Name, s)
				}
			}
		}
		if _, err := NewSet(pbs); err != nil {
			t.Fatalf("names unique within a file, yet NewSet fails: %v", err)
		}
	})
}
