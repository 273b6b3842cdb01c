package comfortctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// print writes v to stdout as indented JSON with -o json, otherwise calls
// table with stdout. Protobuf messages are written as the gateways write
// them: proto field names, every field present.
func (a *app) print(v any, table func(w io.Writer)) error {
	if a.output != "json" {
		table(a.stdout)
		return nil
	}
	var raw []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		raw, err = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose; Indent makes it stable.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = a.stdout.Write(out.Bytes())
	return err
}

// writeTable writes rows under header, aligned in columns.
func writeTable(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		_, _ = fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// yesNo shows a boolean cell.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// when shows a timestamp cell in UTC, RFC 3339, or "-" when unset.
func when(t *timestamppb.Timestamp) string {
	if t == nil || !t.IsValid() || t.AsTime().IsZero() {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress returns a progress bar up to total on stderr, visible when
// stderr is a terminal or --progress asks for it, so that scripts' logs
// stay free of it.
func (a *app) progress(total int, description string) *progressbar.ProgressBar {
	visible := a.forceProgress || isTerminal(a.stderr)
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetVisibility(visible),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = fmt.Fprintln(a.stderr) }),
	)
}
