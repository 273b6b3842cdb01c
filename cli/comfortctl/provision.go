package comfortctl

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/comfortech/platform/libs/apiclient"
	"github.com/comfortech/platform/services/device/simulator"
	"github.com/comfortech/platform/services/device/simulator/provision"
)

func (a *app) devicesProvisionCommand() *cobra.Command {
	var (
		file, out, model, prefix, firmware string
		count, batchSize                   int
	)
	cmd := &cobra.Command{
		Use:   "provision (-f FILE | --count N --model M --serial-prefix P) --out CREDENTIALS",
		Short: "Provision devices from a file or with generated serials, saving their credentials",
		Long: `Provision devices through the admin gateway (POST
/v1/fleet/devices:batch-provision, at most 1000 per call, each call all or
nothing) with a progress bar, and write each device's id, secret, serial,
model and claim code to --out: a new file (never overwritten: the secrets are
shown once), JSON when its name ends in .json, CSV otherwise — the format the
simulator reads (comfortctl simulate -f, SIM_CREDENTIALS).

-f reads CSV with a header row naming the columns serial, model,
firmware_version and claim_code (the last two optional), or JSON: an array of
objects with those fields, or {"devices": [...]}; - reads stdin. --model fills
rows without one. --count N generates serials PREFIX-000001 to PREFIX-N.

If a call fails, the devices provisioned before it are still written to --out.`,
		Args: exactArgs(0, "no arguments (the devices are -f FILE or --count)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (file == "") == (count == 0) {
				return usagef("give the devices with -f FILE or --count N (not both)")
			}
			if count < 0 {
				return usagef("--count must be positive")
			}
			if count > 0 && (model == "" || prefix == "") {
				return usagef("--count needs --model and --serial-prefix")
			}
			if batchSize < 1 || batchSize > provision.MaxBatch {
				return usagef("--batch-size must be between 1 and %d", provision.MaxBatch)
			}
			var devices []provision.Device
			if file != "" {
				raw, err := a.readInput(file)
				if err != nil {
					return err
				}
				if devices, err = parseDevices(raw, model, firmware); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			} else {
				for i := range count {
					devices = append(devices, provision.Device{Serial: fmt.Sprintf("%s-%06d", prefix, i+1), Model: model, FirmwareVersion: firmware})
				}
			}
			// Refuse now rather than lose the secrets after provisioning.
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("--out %s exists (or cannot be checked): the credentials go to a new file", out)
			}
			if _, err := a.token(cmd.Context()); err != nil {
				return err
			}
			bar := a.progress(len(devices), "provisioning")
			client := &provision.Client{AdminURL: a.adminBase(), TokenSource: a.token, HTTP: a.http,
				Progress: func(done, _ int) { _ = bar.Set(done) }}
			creds, perr := client.ProvisionDevices(cmd.Context(), devices, batchSize)
			if perr != nil {
				_ = bar.Exit()
				fmt.Fprintln(a.stderr)
			}
			if len(creds) > 0 {
				if err := simulator.SaveCredentials(out, creds); err != nil {
					return errors.Join(perr, err)
				}
			}
			if perr != nil {
				return provisionFailure(perr, devices, creds, out)
			}
			return a.print(provisionResult(creds, out), func(w io.Writer) {
				fmt.Fprintf(w, "Provisioned %d devices; their credentials (secrets and claim codes, shown once) are in %s.\n", len(creds), out)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "devices to provision, CSV or JSON; - reads stdin")
	f.IntVar(&count, "count", 0, "provision this many devices with generated serials")
	f.StringVar(&model, "model", "", "model of generated devices, and of file rows without one")
	f.StringVar(&prefix, "serial-prefix", "", "serial prefix of generated devices")
	f.StringVar(&firmware, "firmware", "", "factory firmware of generated devices, and of file rows without one")
	f.StringVar(&out, "out", "", "new file for the credentials (.json or .csv)")
	f.IntVar(&batchSize, "batch-size", provision.MaxBatch, "devices per call (at most 1000)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// provisionedDevice is a provisioned device in the JSON output: never its
// secret, which only the credentials file holds.
type provisionedDevice struct {
	ID     string `json:"id"`
	Serial string `json:"serial"`
	Model  string `json:"model"`
}

func provisionResult(creds []simulator.Credential, out string) any {
	devices := make([]provisionedDevice, len(creds))
	for i, c := range creds {
		devices[i] = provisionedDevice{ID: c.ID, Serial: c.Serial, Model: c.Model}
	}
	return struct {
		Provisioned int                 `json:"provisioned"`
		Credentials string              `json:"credentials"`
		Devices     []provisionedDevice `json:"devices"`
	}{len(creds), out, devices}
}

// batchField matches a field of one device of a batch request.
var batchField = regexp.MustCompile(`^requests\[(\d+)\]`)

// provisionFailure says how far provisioning went and, when the gateway
// named a device of the failed batch, which one of the input it is.
func provisionFailure(err error, devices []provision.Device, creds []simulator.Credential, out string) error {
	done := "none was provisioned"
	if len(creds) > 0 {
		done = fmt.Sprintf("the %d provisioned before it are in %s", len(creds), out)
	}
	if apiErr, ok := errors.AsType[*apiclient.APIError](err); ok {
		if m := batchField.FindStringSubmatch(apiErr.Field); m != nil {
			if i, convErr := strconv.Atoi(m[1]); convErr == nil && len(creds)+i < len(devices) {
				n := len(creds) + i
				done = fmt.Sprintf("device %d of the input (serial %q) was refused; %s", n+1, devices[n].Serial, done)
			}
		}
	}
	return fmt.Errorf("%w\n%d of %d devices provisioned: %s", err, len(creds), len(devices), done)
}

// deviceRow is a device of a JSON input.
type deviceRow struct {
	Serial          string `json:"serial"`
	Model           string `json:"model"`
	FirmwareVersion string `json:"firmware_version"`
	ClaimCode       string `json:"claim_code"`
}

// parseDevices reads devices from CSV or JSON (by its first character),
// fills in model and firmware where a row has none, and refuses a row
// without a serial or model and a serial listed twice.
func parseDevices(raw []byte, model, firmware string) ([]provision.Device, error) {
	var rows []deviceRow
	var err error
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		rows, err = parseJSONDevices(trimmed)
	} else {
		rows, err = parseCSVDevices(raw)
	}
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New("no devices")
	}
	seen := make(map[string]int, len(rows))
	devices := make([]provision.Device, len(rows))
	for i, r := range rows {
		d := provision.Device{Serial: strings.TrimSpace(r.Serial), Model: strings.TrimSpace(r.Model),
			FirmwareVersion: strings.TrimSpace(r.FirmwareVersion), ClaimCode: strings.TrimSpace(r.ClaimCode)}
		if d.Model == "" {
			d.Model = model
		}
		if d.FirmwareVersion == "" {
			d.FirmwareVersion = firmware
		}
		switch {
		case d.Serial == "":
			return nil, fmt.Errorf("device %d: no serial", i+1)
		case d.Model == "":
			return nil, fmt.Errorf("device %d (%s): no model (give the column or --model)", i+1, d.Serial)
		}
		if j, dup := seen[d.Serial]; dup {
			return nil, fmt.Errorf("device %d: serial %s is also device %d", i+1, d.Serial, j+1)
		}
		seen[d.Serial] = i
		devices[i] = d
	}
	return devices, nil
}

func parseJSONDevices(raw []byte) ([]deviceRow, error) {
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	var rows []deviceRow
	if raw[0] == '[' {
		if err := dec(&rows); err != nil {
			return nil, fmt.Errorf("JSON: %w", err)
		}
		return rows, nil
	}
	var wrapped struct {
		Devices []deviceRow `json:"devices"`
	}
	if err := dec(&wrapped); err != nil {
		return nil, fmt.Errorf(`JSON: want an array of {"serial", "model", "firmware_version", "claim_code"} or {"devices": [...]}: %w`, err)
	}
	return wrapped.Devices, nil
}

// csvColumns are the columns a CSV input may have.
var csvColumns = []string{"serial", "model", "firmware_version", "claim_code"}

func parseCSVDevices(raw []byte) ([]deviceRow, error) {
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(csvColumns, h) {
			return nil, fmt.Errorf("CSV column %q: the columns are %s", header[i], strings.Join(csvColumns, ", "))
		}
		col[h] = i
	}
	if _, ok := col["serial"]; !ok {
		return nil, fmt.Errorf("CSV header %q has no serial column", strings.Join(header, ","))
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok {
			return rec[i]
		}
		return ""
	}
	var rows []deviceRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
		rows = append(rows, deviceRow{Serial: field(rec, "serial"), Model: field(rec, "model"),
			FirmwareVersion: field(rec, "firmware_version"), ClaimCode: field(rec, "claim_code")})
	}
}
