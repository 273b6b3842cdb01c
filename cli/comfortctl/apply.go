package comfortctl

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/comfortech/platform/proto/comfortech/admin/v1"
)

// applyCommand builds apply, or diff when dryRun is set.
func (a *app) applyCommand(dryRun bool) *cobra.Command {
	var (
		file  string
		prune bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make the platform hold an environment configuration document",
		Long: `Send a configuration document (YAML or JSON: device models, notification
applications, subscriptions; see deployments/environments/sample.yaml) to the
admin gateway (POST /v1/config:apply) and print each item's change with its
unified diff. Applying the same file again changes nothing. With --prune,
items of a listed kind that the file leaves out are deleted.`,
		Args: exactArgs(0, "no arguments (the document is -f FILE)"),
	}
	if dryRun {
		cmd.Use = "diff -f FILE"
		cmd.Short = "Show what apply would change, without changing anything (exit 3 when it would)"
		cmd.Long = `Ask the admin gateway what applying the document would change (a dry run
of POST /v1/config:apply) and print each change with its unified diff.
Exits 0 when the platform already holds the document, 3 when it differs
(like diff and terraform plan -detailed-exitcode), 1 on an error.`
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		doc, err := a.readInput(file)
		if err != nil {
			return err
		}
		req := &adminv1.ApplyConfigRequest{Document: string(doc), DryRun: dryRun, Prune: prune}
		var resp adminv1.ApplyConfigResponse
		if err := a.adminAPI().Do(cmd.Context(), http.MethodPost, "/v1/config:apply", nil, req, &resp); err != nil {
			return fmt.Errorf("%s %s: %w", cmd.Name(), file, err)
		}
		err = a.print(&resp, func(w io.Writer) { printChanges(w, &resp, dryRun) })
		if err != nil {
			return err
		}
		if dryRun && resp.GetChanged() {
			return exitError{code: ExitChanges}
		}
		return nil
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the document; - reads stdin")
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete items of the document's kinds that it does not list")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readInput reads a file, or stdin for "-".
func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(name)
}

// printChanges writes the changes as a table, a summary line and the
// diff of every changed item.
func printChanges(w io.Writer, resp *adminv1.ApplyConfigResponse, dryRun bool) {
	counts := map[adminv1.ChangeAction]int{}
	rows := make([][]string, 0, len(resp.GetItems()))
	for _, c := range resp.GetItems() {
		counts[c.GetAction()]++
		rows = append(rows, []string{c.GetKind(), c.GetName(), actionName(c.GetAction())})
	}
	if len(rows) > 0 {
		writeTable(w, []string{"KIND", "NAME", "ACTION"}, rows)
	}
	verbs := []string{"created", "updated", "deleted"}
	if dryRun {
		verbs = []string{"to create", "to update", "to delete"}
	}
	if !resp.GetChanged() {
		fmt.Fprintf(w, "No changes: %d item(s) unchanged.\n", counts[adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED])
	} else {
		fmt.Fprintf(w, "%d %s, %d %s, %d %s, %d unchanged.\n",
			counts[adminv1.ChangeAction_CHANGE_ACTION_CREATE], verbs[0], counts[adminv1.ChangeAction_CHANGE_ACTION_UPDATE], verbs[1],
			counts[adminv1.ChangeAction_CHANGE_ACTION_DELETE], verbs[2], counts[adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED])
	}
	for _, c := range resp.GetItems() {
		if c.GetDiff() == "" {
			continue
		}
		fmt.Fprintln(w)
		fmt.Fprint(w, c.GetDiff())
		if !strings.HasSuffix(c.GetDiff(), "\n") {
			fmt.Fprintln(w)
		}
	}
}

// actionName shows CHANGE_ACTION_CREATE as "create".
func actionName(a adminv1.ChangeAction) string {
	return strings.ToLower(strings.TrimPrefix(a.String(), "CHANGE_ACTION_"))
}
