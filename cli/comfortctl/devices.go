package comfortctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
)

func (a *app) devicesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List, inspect and provision the fleet's devices",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.devicesListCommand(), a.devicesGetCommand(), a.devicesProvisionCommand())
	return cmd
}

// listPageSize is how many devices each list call asks for: the most the
// API gives.
const listPageSize = 1000

func (a *app) devicesListCommand() *cobra.Command {
	var (
		model, firmware, owner, home, serialPrefix string
		online, offline, claimed, unclaimed        bool
		limit                                      int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List devices of the registry, filtered, through every page",
		Long: `List the fleet's devices by serial (GET /v1/fleet/devices), following
every page, or the first --limit devices. Filters combine with AND.`,
		Args: exactArgs(0, "no arguments (filters are flags)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if online && offline {
				return usagef("--online and --offline exclude each other")
			}
			if claimed && unclaimed {
				return usagef("--claimed and --unclaimed exclude each other")
			}
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			q := url.Values{}
			for k, v := range map[string]string{"model": model, "firmware_version": firmware, "owner_account_id": owner,
				"home_id": home, "serial_prefix": serialPrefix} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if online || offline {
				q.Set("online", strconv.FormatBool(online))
			}
			if claimed || unclaimed {
				q.Set("claimed", strconv.FormatBool(claimed))
			}
			all := &datav1.ListFleetDevicesResponse{}
			for first := true; first || all.GetNextPageToken() != ""; first = false {
				size := listPageSize
				if limit > 0 {
					size = min(size, limit-len(all.GetItems()))
				}
				q.Set("page_size", strconv.Itoa(size))
				if t := all.GetNextPageToken(); t != "" {
					q.Set("page_token", t)
				}
				var page datav1.ListFleetDevicesResponse
				if err := a.adminAPI().Do(cmd.Context(), http.MethodGet, "/v1/fleet/devices", q, nil, &page); err != nil {
					return fmt.Errorf("list devices: %w", err)
				}
				if first {
					all.TotalSize = page.GetTotalSize()
				}
				all.Items = append(all.Items, page.GetItems()...)
				all.NextPageToken = page.GetNextPageToken()
				if limit > 0 && len(all.GetItems()) >= limit {
					break
				}
			}
			if limit > 0 && len(all.GetItems()) > limit {
				all.Items = all.Items[:limit]
			}
			return a.print(all, func(w io.Writer) {
				rows := make([][]string, 0, len(all.GetItems()))
				for _, d := range all.GetItems() {
					rows = append(rows, []string{d.GetId(), d.GetSerial(), d.GetModel(), orDash(d.GetFirmwareVersion()),
						yesNo(d.GetOnline()), orDash(d.GetOwnerAccountId()), orDash(d.GetHomeId()), when(d.GetLastSeenTime())})
				}
				writeTable(w, []string{"ID", "SERIAL", "MODEL", "FIRMWARE", "ONLINE", "OWNER", "HOME", "LAST SEEN"}, rows)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "only this model")
	f.StringVar(&firmware, "firmware", "", "only this firmware version")
	f.BoolVar(&online, "online", false, "only devices connected now")
	f.BoolVar(&offline, "offline", false, "only devices not connected now")
	f.StringVar(&owner, "owner", "", "only devices owned by this account id")
	f.StringVar(&home, "home", "", "only devices in this home id")
	f.BoolVar(&claimed, "claimed", false, "only claimed devices")
	f.BoolVar(&unclaimed, "unclaimed", false, "only devices not claimed yet")
	f.StringVar(&serialPrefix, "serial-prefix", "", "only serials starting with this")
	f.IntVar(&limit, "limit", 0, "at most this many devices (0: all)")
	return cmd
}

func (a *app) devicesGetCommand() *cobra.Command {
	return &cobra.Command{
		Use: "get ID",
		Short: "A device's full picture: registry entry, owner, members, home, state, telemetry, alert rules, " +
			"alerts, presence history and recent commands",
		Args: exactArgs(1, "one device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/fleet/devices/" + url.PathEscape(args[0])
			recent := url.Values{"page_size": {strconv.Itoa(recentItems)}}
			var (
				dev      datav1.GetFleetDeviceResponse
				presence devicev1.ListDevicePresenceEventsResponse
				commands devicev1.ListDeviceCommandsResponse
			)
			// The registry's picture comes from the data service; presence
			// history and commands from the device service.
			for _, c := range []struct {
				path  string
				query url.Values
				out   proto.Message
			}{{path, nil, &dev}, {path + "/presence/events", recent, &presence}, {path + "/commands", recent, &commands}} {
				if err := a.adminAPI().Do(cmd.Context(), http.MethodGet, c.path, c.query, nil, c.out); err != nil {
					return fmt.Errorf("get device %s: %w", args[0], err)
				}
			}
			picture, err := jsonObject(map[string]proto.Message{"device": dev.GetDevice(), "presence_events": &presence, "recent_commands": &commands})
			if err != nil {
				return err
			}
			return a.print(picture, func(w io.Writer) {
				printFleetDevice(w, dev.GetDevice())
				printPresence(w, presence.GetItems())
				printCommands(w, commands.GetItems())
			})
		},
	}
}

// recentItems is how many presence changes and commands a device's picture
// shows.
const recentItems = 10

// printPresence writes a device's latest presence changes.
func printPresence(w io.Writer, events []*devicev1.PresenceEvent) {
	if len(events) == 0 {
		return
	}
	fmt.Fprintln(w)
	rows := [][]string{}
	for _, e := range events {
		state := "offline"
		if e.GetOnline() {
			state = "online"
		}
		rows = append(rows, []string{state, strings.ToLower(strings.TrimPrefix(e.GetReason().String(), "PRESENCE_REASON_")), when(e.GetTime())})
	}
	writeTable(w, []string{"PRESENCE", "REASON", "TIME"}, rows)
}

// printCommands writes a device's recent commands.
func printCommands(w io.Writer, cmds []*devicev1.Command) {
	if len(cmds) == 0 {
		return
	}
	fmt.Fprintln(w)
	rows := [][]string{}
	for _, c := range cmds {
		rows = append(rows, []string{c.GetName(), strings.ToLower(strings.TrimPrefix(c.GetStatus().String(), "COMMAND_STATUS_")),
			when(c.GetCreateTime()), when(c.GetCompleteTime()), orDash(c.GetError())})
	}
	writeTable(w, []string{"COMMAND", "STATUS", "REQUESTED", "COMPLETED", "ERROR"}, rows)
}

// jsonObject renders messages as one JSON object, each under its key, as
// the gateways write them.
func jsonObject(parts map[string]proto.Message) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(parts))
	for k, m := range parts {
		raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			return nil, err
		}
		out[k] = raw
	}
	return out, nil
}

// printFleetDevice writes a device's picture as sections.
func printFleetDevice(w io.Writer, fd *datav1.FleetDevice) {
	d := fd.GetDevice()
	seen := yesNo(d.GetOnline())
	if t := when(d.GetLastSeenTime()); t != "-" {
		seen += " (last seen " + t + ")"
	}
	owner := "-"
	if o := fd.GetOwner(); o != nil {
		owner = strings.TrimSpace(fmt.Sprintf("%s %s %s", o.GetId(), o.GetPhone(), o.GetName()))
	} else if d.GetOwnerAccountId() != "" {
		owner = d.GetOwnerAccountId()
	}
	home := "-"
	if h := fd.GetHome(); h != nil {
		home = h.GetName() + " (" + h.GetId() + ")"
	}
	writeTable(w, []string{"DEVICE", d.GetId()}, [][]string{
		{"serial", d.GetSerial()}, {"model", d.GetModel()}, {"firmware", orDash(d.GetFirmwareVersion())},
		{"name", orDash(d.GetName())}, {"online", seen}, {"provisioned", when(d.GetCreateTime())},
		{"claimed", when(d.GetClaimTime())}, {"owner", owner}, {"home", home}, {"room", orDash(d.GetRoomId())},
	})
	if len(fd.GetMembers()) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{}
		for _, m := range fd.GetMembers() {
			rows = append(rows, []string{m.GetAccountId(), orDash(m.GetName()), orDash(m.GetPhoneMasked()),
				strings.ToLower(strings.TrimPrefix(m.GetRole().String(), "ACCESS_ROLE_")), when(m.GetCreateTime())})
		}
		writeTable(w, []string{"MEMBER", "NAME", "PHONE", "ROLE", "SINCE"}, rows)
	}
	if st := fd.GetState(); st != nil {
		fmt.Fprintln(w)
		writeTable(w, []string{"STATE", "VERSION", "DOCUMENT"}, [][]string{
			{"desired", strconv.FormatInt(st.GetDesired().GetVersion(), 10), compactJSON(st.GetDesired().GetState())},
			{"reported", strconv.FormatInt(st.GetReported().GetVersion(), 10), compactJSON(st.GetReported().GetState())},
			{"delta", "-", compactJSON(st.GetDelta())},
		})
	}
	if len(fd.GetLatestTelemetry()) > 0 {
		fmt.Fprintln(w)
		metrics := make([]string, 0, len(fd.GetLatestTelemetry()))
		for m := range fd.GetLatestTelemetry() {
			metrics = append(metrics, m)
		}
		sort.Strings(metrics)
		rows := [][]string{}
		for _, m := range metrics {
			v := fd.GetLatestTelemetry()[m]
			rows = append(rows, []string{m, strconv.FormatFloat(v.GetValue(), 'g', -1, 64), when(v.GetTime())})
		}
		writeTable(w, []string{"METRIC", "LATEST", "TIME"}, rows)
	}
	if len(fd.GetAlertRules()) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{}
		for _, r := range fd.GetAlertRules() {
			rows = append(rows, []string{r.GetName(), condition(r.GetCondition()), yesNo(r.GetEnabled()), yesNo(r.GetFromModelDefault())})
		}
		writeTable(w, []string{"ALERT RULE", "CONDITION", "ENABLED", "MODEL DEFAULT"}, rows)
	}
	if len(fd.GetRecentAlerts()) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{}
		for _, al := range fd.GetRecentAlerts() {
			rows = append(rows, []string{al.GetRuleName(), strings.ToLower(strings.TrimPrefix(al.GetState().String(), "ALERT_STATE_")),
				when(al.GetRaiseTime()), strconv.FormatFloat(al.GetRaiseValue(), 'g', -1, 64), when(al.GetClearTime())})
		}
		writeTable(w, []string{"ALERT", "STATE", "RAISED", "VALUE", "CLEARED"}, rows)
	}
}

// condition shows an alert condition as "temperature < 12 for 5m0s (warning)".
func condition(c *datav1.AlertCondition) string {
	ops := map[datav1.Operator]string{
		datav1.Operator_OPERATOR_LESS_THAN: "<", datav1.Operator_OPERATOR_LESS_THAN_OR_EQUAL: "<=",
		datav1.Operator_OPERATOR_GREATER_THAN: ">", datav1.Operator_OPERATOR_GREATER_THAN_OR_EQUAL: ">=",
	}
	op, ok := ops[c.GetOperator()]
	if !ok {
		op = c.GetOperator().String()
	}
	s := fmt.Sprintf("%s %s %s", c.GetMetric(), op, strconv.FormatFloat(c.GetThreshold(), 'g', -1, 64))
	if d := c.GetMinDuration().AsDuration(); d > 0 {
		s += " for " + d.String()
	}
	return s + " (" + c.GetLevel() + ")"
}

// compactJSON shows a state document on one line.
func compactJSON(s *structpb.Struct) string {
	if len(s.GetFields()) == 0 {
		return "{}"
	}
	b, err := json.Marshal(s.AsMap())
	if err != nil {
		return err.Error()
	}
	return string(b)
}
