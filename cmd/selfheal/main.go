// Command selfheal is an Alertmanager webhook receiver that runs declarative
// remediation playbooks, at most once per alert episode. This package is
// wiring only: flags, then the components, then an oklog/run group.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	app := kingpin.New("selfheal", "Runs remediation playbooks for Alertmanager alerts, once per episode.")
	app.HelpFlag.Short('h')
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)

	serve := newServeCmd(app, logCfg)
	check := newCheckCmd(app)
	dry := newDryRunCmd(app)
	app.Command("version", "Print the version and exit.")

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "selfheal: %v\n", err)
		return 2
	}
	switch cmd {
	case "serve":
		return serve.run()
	case "check":
		return check.run(os.Stdout, os.Stderr)
	case "dry-run":
		return dry.run(os.Stdin, os.Stdout, os.Stderr)
	case "version":
		fmt.Println(version.Print("selfheal"))
		return 0
	}
	return 2
}
