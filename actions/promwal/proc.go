package promwal

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procUser is a process with a file under the data dir open or mapped.
type procUser struct {
	PID  int
	Comm string
	Path string
}

// openFilesCheck looks through /proc for processes, other than this one,
// that have a file under dataDir open or memory-mapped. A running
// Prometheus always has: the current WAL segment, chunks_head/,
// queries.active, every block's chunks. It is the only proof of life for
// a Prometheus without a lock file. Inside a container it only sees the
// container's own processes.
func openFilesCheck(dataDir string) Check {
	users, unreadable, err := procUsers(dataDir)
	if err != nil {
		return pass("open_files", "could not look for processes using %s (%v); relying on the lock check", dataDir, err)
	}
	if len(users) > 0 {
		var s []string
		for i, u := range users {
			if i == 3 {
				s = append(s, fmt.Sprintf("and %d more", len(users)-3))
				break
			}
			s = append(s, fmt.Sprintf("pid %d (%s) has %s open", u.PID, u.Comm, u.Path))
		}
		return fail("open_files", ErrInUse, "%s: Prometheus (or something else) is using the data dir", strings.Join(s, ", "))
	}
	detail := fmt.Sprintf("no other process has a file under %s open or mapped (/proc)", dataDir)
	if unreadable > 0 {
		detail += fmt.Sprintf("; could not inspect %d other process(es) (permission)", unreadable)
	}
	return pass("open_files", "%s", detail)
}

// procUsers returns the processes that use files under dir, one entry per
// process, and how many processes could not be inspected.
func procUsers(dir string) ([]procUser, int, error) {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil, 0, err
	}
	self := os.Getpid()
	var users []procUser
	unreadable := 0
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		path, ok := procUses(pid, dir)
		if !ok {
			unreadable++
			continue
		}
		if path != "" {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			users = append(users, procUser{PID: pid, Comm: strings.TrimSpace(string(comm)), Path: path})
		}
	}
	return users, unreadable, nil
}

// procUses returns a path under dir that process pid has open or mapped,
// or "". ok is false when the process could not be inspected; a process
// that exited meanwhile counts as inspected.
func procUses(pid int, dir string) (path string, ok bool) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return "", os.IsNotExist(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fdDir + "/" + fd.Name()); err == nil && under(target, dir) {
			return target, true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return "", os.IsNotExist(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '/'); i >= 0 {
			p := strings.TrimSuffix(line[i:], " (deleted)")
			if under(p, dir) {
				return p, true
			}
		}
	}
	return "", true
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
