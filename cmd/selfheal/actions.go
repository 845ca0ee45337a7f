package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/actions/builtin"
)

type actionsCmd struct {
	output string
}

func newActionsCmd(app *kingpin.Application) *actionsCmd {
	c := &actionsCmd{}
	cmd := app.Command("actions", "List the action types with their parameters, defaults and an example.")
	cmd.Flag("output", "Output format.").Default("text").EnumVar(&c.output, "text", "json")
	return c
}

type actionDoc struct {
	ID      string             `json:"id"`
	Summary string             `json:"summary"`
	Params  []actions.ParamDoc `json:"params"`
	Example string             `json:"example"`
}

func (c *actionsCmd) run(stdout, stderr io.Writer) int {
	var docs []actionDoc
	for _, s := range builtin.Specs(placeholderDeps(nil)) {
		docs = append(docs, actionDoc{ID: s.ID, Summary: s.Summary, Params: actions.Describe(s), Example: s.Example})
	}
	if c.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(docs); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	for i, d := range docs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s: %s\n\n", d.ID, d.Summary)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARAM\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, p := range d.Params {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, p.Type, p.Default, p.Doc)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "\n  example:\n    %s\n", strings.ReplaceAll(strings.TrimRight(d.Example, "\n"), "\n", "\n    "))
	}
	return 0
}
