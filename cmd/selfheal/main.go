// Command selfheal is an Alertmanager webhook receiver that runs declarative
// remediation playbooks, at most once per alert episode. This package is
// wiring only: flags, then the components, then an oklog/run group.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

func main() {
	os.Exit(realMainIO(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMainIO runs the command line args with the given streams and returns
// the exit code: 0 success, 1 failure, 2 usage error.
func realMainIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := kingpin.New("selfheal", "Runs remediation playbooks for Alertmanager alerts, once per episode.")
	app.HelpFlag.Short('h')
	app.UsageWriter(stderr).ErrorWriter(stderr)
	helped := false
	app.Terminate(func(int) { helped = true }) // --help: report, do not exit the test binary
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)

	serve := newServeCmd(app, logCfg)
	check := newCheckCmd(app)
	dry := newDryRunCmd(app)
	acts := newActionsCmd(app)
	walq := newWalQuarantineCmd(app)
	tests := newTestCmd(app)
	app.Command("version", "Print the version and exit.")

	cmd, err := app.Parse(args)
	if helped {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "selfheal: %v\n", err)
		return 2
	}
	switch cmd {
	case "serve":
		return serve.run()
	case "check":
		return check.run(stdout, stderr)
	case "dry-run":
		return dry.run(stdin, stdout, stderr)
	case "actions":
		return acts.run(stdout, stderr)
	case "wal-quarantine":
		return walq.run(stdout, stderr)
	case "test":
		return tests.run(stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version.Print("selfheal"))
		return 0
	}
	return 2
}
