package app

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// maxDocumentBytes bounds a state document's JSON, so one device cannot
// grow a row (and every event carrying it) without limit.
const maxDocumentBytes = 64 << 10

// jsonEqual compares two values as decoded from JSON (maps, slices,
// float64, string, bool, nil).
func jsonEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

// mergePatch applies an RFC 7396 JSON merge patch to doc in place (a nil
// value removes the key, an object merges into an object) and returns the
// top-level keys whose value changed.
func mergePatch(doc, patch map[string]any) []string {
	var changed []string
	for k, pv := range patch {
		old, had := doc[k]
		switch pv := pv.(type) {
		case nil:
			if !had {
				continue
			}
			delete(doc, k)
		case map[string]any:
			target, ok := old.(map[string]any)
			if !ok {
				target = map[string]any{}
			}
			merged := mergeValue(target, pv)
			if had && jsonEqual(old, merged) {
				continue
			}
			doc[k] = merged
		default:
			if had && jsonEqual(old, pv) {
				continue
			}
			doc[k] = pv
		}
		changed = append(changed, k)
	}
	return changed
}

// mergeValue merges patch into a copy of target, recursively.
func mergeValue(target, patch map[string]any) map[string]any {
	out := make(map[string]any, len(target)+len(patch))
	for k, v := range target {
		out[k] = v
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			t, _ := out[k].(map[string]any)
			out[k] = mergeValue(t, pv)
		default:
			out[k] = pv
		}
	}
	return out
}

// apply merges patch into d at time at; it reports whether anything
// changed (then the version and times move on).
func (d *Document) apply(patch map[string]any, at time.Time) (bool, error) {
	if d.Values == nil {
		d.Values = map[string]any{}
	}
	if d.FieldTimes == nil {
		d.FieldTimes = map[string]time.Time{}
	}
	changed := mergePatch(d.Values, patch)
	if len(changed) == 0 {
		return false, nil
	}
	if b, err := json.Marshal(d.Values); err != nil {
		return false, fmt.Errorf("app: state document: %w", err)
	} else if len(b) > maxDocumentBytes {
		return false, invalid("state", fmt.Sprintf("document would exceed %d bytes", maxDocumentBytes))
	}
	for _, k := range changed {
		if _, ok := d.Values[k]; ok {
			d.FieldTimes[k] = at
		} else {
			delete(d.FieldTimes, k)
		}
	}
	d.Version++
	d.UpdatedAt = at
	return true, nil
}

// GetState returns the state of a device accountID reaches.
func (a *App) GetState(ctx context.Context, accountID, deviceID string) (DeviceState, error) {
	if _, err := access(ctx, a.store, accountID, deviceID); err != nil {
		return DeviceState{}, err
	}
	return a.store.GetState(ctx, deviceID)
}

// UpdateDesired merges patch into the desired document of a device
// accountID reaches (owner or member: both may command). With expected
// set, a different stored version is ErrVersionConflict and nothing
// changes. A change emits DesiredStateChanged for the device service.
func (a *App) UpdateDesired(ctx context.Context, accountID, deviceID string, patch map[string]any, expected *int64) (DeviceState, error) {
	var st DeviceState
	err := a.inTx(ctx, func(tx Tx) error {
		if _, err := access(ctx, tx, accountID, deviceID); err != nil {
			return err
		}
		var err error
		if st, err = tx.GetState(ctx, deviceID); err != nil {
			return err
		}
		if expected != nil && *expected != st.Desired.Version {
			return &Error{Kind: ErrVersionConflict,
				Msg: fmt.Sprintf("desired state is at version %d, not %d: read it again", st.Desired.Version, *expected)}
		}
		now := a.clock()
		changed, err := st.Desired.apply(patch, now)
		if err != nil || !changed {
			return err
		}
		if err := tx.PutState(ctx, st); err != nil {
			return err
		}
		return a.emitDesired(ctx, tx, st, accountID, now)
	})
	return st, err
}

// ReportState merges what a device reported into its reported document,
// with the report time as the fields' change time, and emits
// DeviceStateReported with the reported keys.
func (a *App) ReportState(ctx context.Context, deviceID string, patch map[string]any, at time.Time) (DeviceState, error) {
	var st DeviceState
	err := a.inTx(ctx, func(tx Tx) error {
		if _, err := tx.GetDevice(ctx, deviceID); err != nil {
			return deviceNotFound(err)
		}
		var err error
		if st, err = tx.GetState(ctx, deviceID); err != nil {
			return err
		}
		at := at.UTC().Truncate(time.Microsecond)
		changed, err := st.Reported.apply(patch, at)
		if err != nil || !changed {
			return err
		}
		if err := tx.PutState(ctx, st); err != nil {
			return err
		}
		reported, err := structpb.NewStruct(patch)
		if err != nil {
			return err
		}
		return a.emit(ctx, tx, TopicDeviceLifecycle, TypeDeviceStateReported, deviceID, &eventsv1.DeviceStateReported{
			DeviceId: deviceID, Reported: reported, Version: st.Reported.Version, Time: timestamppb.New(a.now())})
	})
	return st, err
}

// DesiredState returns any device's state, for the device service.
func (a *App) DesiredState(ctx context.Context, deviceID string) (DeviceState, error) {
	if _, err := a.store.GetDevice(ctx, deviceID); err != nil {
		return DeviceState{}, deviceNotFound(err)
	}
	return a.store.GetState(ctx, deviceID)
}

// deviceNotFound gives a store's ErrNotFound for a device its message.
func deviceNotFound(err error) error {
	if isNotFound(err) {
		return notFound("device")
	}
	return err
}
