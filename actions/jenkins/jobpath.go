package jenkins

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// unsafeNameChars are the characters Jenkins refuses in item names
// (Jenkins.checkGoodName), "/" aside: it separates folders here.
const unsafeNameChars = `?*\%!@#$^&|<>[]:;`

// jobPath is a job's full name split into folder segments: "a/b" is the
// job b in the folder a.
type jobPath []string

// parseJobPath parses a job's full name. Segments Jenkins could not have
// created (empty, ".", "..", padded with spaces, holding a character
// Jenkins refuses) are errors, so that no name is ever guessed at.
func parseJobPath(s string) (jobPath, error) {
	if s == "" {
		return nil, fmt.Errorf("job: must not be empty")
	}
	segs := strings.Split(s, "/")
	for _, seg := range segs {
		switch {
		case seg == "":
			return nil, fmt.Errorf("job: %q has an empty segment (write folders as a/b)", s)
		case seg == "." || seg == "..":
			return nil, fmt.Errorf("job: %q: %q is not a job or folder name", s, seg)
		case strings.TrimSpace(seg) != seg:
			return nil, fmt.Errorf("job: %q: %q starts or ends with a space", s, seg)
		case strings.IndexFunc(seg, unicode.IsControl) >= 0:
			return nil, fmt.Errorf("job: %q: %q contains a control character", s, seg)
		}
		if i := strings.IndexAny(seg, unsafeNameChars); i >= 0 {
			return nil, fmt.Errorf("job: %q: Jenkins does not allow %q in a name", s, seg[i:i+1])
		}
	}
	return jobPath(segs), nil
}

// String is the full name, "a/b".
func (p jobPath) String() string { return strings.Join(p, "/") }

// escaped returns the segments, each escaped for a URL path.
func (p jobPath) escaped() []string {
	out := make([]string, len(p))
	for i, seg := range p {
		out[i] = url.PathEscape(seg)
	}
	return out
}

// base is the job's path under the server root: "/job/a/job/b", every
// segment escaped.
func (p jobPath) base() string {
	return "/job/" + strings.Join(p.escaped(), "/job/")
}
