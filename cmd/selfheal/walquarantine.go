package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/alecthomas/kingpin/v2"

	"github.com/selfheal/selfheal/actions/promwal"
)

// walQuarantineCmd is `selfheal wal-quarantine`: the core of the
// prometheus.wal_cleanup action on a local data dir, without alerts or
// systemd. A Kubernetes Job runs it against the mounted volume.
type walQuarantineCmd struct {
	dataDir       string
	quarantineDir string
	minWALBytes   promwal.Bytes
	dryRun        bool
	json          bool
}

func newWalQuarantineCmd(app *kingpin.Application) *walQuarantineCmd {
	c := &walQuarantineCmd{minWALBytes: promwal.DefaultMinWALBytes}
	cmd := app.Command("wal-quarantine", "Move a stopped Prometheus' WAL and head chunks into a dated quarantine folder (never delete); print the manifest. Exit 1 when refused or failed.")
	cmd.Flag("data-dir", "The TSDB data dir (--storage.tsdb.path).").Required().StringVar(&c.dataDir)
	cmd.Flag("quarantine-dir", "Where the dated quarantine folder goes: same filesystem, outside the data dir.").Required().StringVar(&c.quarantineDir)
	cmd.Flag("min-wal-bytes", "Refuse when wal/ is smaller: bytes, or with a unit (64MiB).").Default(c.minWALBytes.String()).SetValue(&c.minWALBytes)
	cmd.Flag("dry-run", "Only print what would move and whether every check passes; exit 1 if it would refuse.").BoolVar(&c.dryRun)
	cmd.Flag("json", "With --dry-run, print the plan as JSON.").BoolVar(&c.json)
	return c
}

func (c *walQuarantineCmd) run(stdout, stderr io.Writer) int {
	opts, err := c.options()
	if err != nil {
		fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
		return 1
	}
	if c.dryRun {
		return c.preview(opts, stdout, stderr)
	}
	m, err := promwal.Quarantine(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
		return 1
	}
	data, err := promwal.MarshalJSON(m)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(data)
	fmt.Fprintf(stderr, "moved %d files (%d bytes) into %s; manifest %s\nrestore (only before Prometheus starts again): %s\n",
		m.FileCount, m.TotalBytes, m.QuarantinePath, m.Path, m.RestoreCommand)
	return 0
}

// preview prints what a quarantine would do; exit 1 if it would refuse.
func (c *walQuarantineCmd) preview(opts promwal.QuarantineOptions, stdout, stderr io.Writer) int {
	p, err := promwal.PreviewQuarantine(opts)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
		return 1
	}
	if c.json {
		data, err := promwal.MarshalJSON(p)
		if err != nil {
			fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(data)
	} else {
		fmt.Fprintf(stdout, "would %s\n", p.Summary())
		for _, l := range p.Lines() {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
	}
	if err := p.Err(); err != nil {
		fmt.Fprintf(stderr, "selfheal wal-quarantine: %v\n", err)
		return 1
	}
	return 0
}

// options makes the paths absolute.
func (c *walQuarantineCmd) options() (promwal.QuarantineOptions, error) {
	data, err := filepath.Abs(c.dataDir)
	if err != nil {
		return promwal.QuarantineOptions{}, err
	}
	q, err := filepath.Abs(c.quarantineDir)
	if err != nil {
		return promwal.QuarantineOptions{}, err
	}
	return promwal.QuarantineOptions{
		DataDir:       data,
		QuarantineDir: q,
		MinWALBytes:   int64(c.minWALBytes),
		Evidence:      []string{"selfheal wal-quarantine command"},
	}, nil
}
