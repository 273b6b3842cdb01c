// Package notifysms sends one-time codes by SMS through the notify
// service's DirectService, which bypasses preferences and quiet hours,
// records the attempt in the delivery log with the phone masked and, in
// development, captures the message in the dev inbox.
//
// Operators may word the message with a notify template for application
// "auth", event type "one-time-code" (payload: code, expires_in_minutes);
// without one the default text below is sent.
package notifysms

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
)

// Template names the notify template that words the code, if one exists.
const (
	TemplateApplication = "auth"
	TemplateEventType   = "one-time-code"
)

// Sender delivers codes through the notify service. It implements the auth
// gateway's CodeSender.
type Sender struct {
	client notifyv1.DirectServiceClient
}

// New returns a Sender calling the notify service over conn, which must
// carry the gateway's service-account token (role service).
func New(conn grpc.ClientConnInterface) *Sender {
	return &Sender{client: notifyv1.NewDirectServiceClient(conn)}
}

// SendCode sends code to phone and returns once the SMS provider has
// accepted it; an error when it has not, so the caller can refuse the
// request visibly. The code is never logged here.
func (s *Sender) SendCode(ctx context.Context, phone, code string, ttl time.Duration) error {
	minutes := int(math.Ceil(ttl.Minutes()))
	payload, err := structpb.NewStruct(map[string]any{"code": code, "expires_in_minutes": minutes})
	if err != nil {
		return fmt.Errorf("one-time code: %w", err)
	}
	res, err := s.client.SendDirectMessage(ctx, &notifyv1.SendDirectMessageRequest{
		// Each code is a message of its own: a fresh idempotency key.
		Id:                  uuid.NewString(),
		Channel:             notifyv1.Channel_CHANNEL_SMS,
		Recipient:           &notifyv1.SendDirectMessageRequest_Phone{Phone: phone},
		Body:                fmt.Sprintf("Your Comfortech code is %s. It expires in %d min.", code, minutes),
		TemplateApplication: TemplateApplication,
		TemplateEventType:   TemplateEventType,
		Payload:             payload,
	})
	if err != nil {
		return fmt.Errorf("one-time code: notify service: %w", err)
	}
	if !res.GetSent() {
		return errors.New("one-time code: SMS not accepted: " + res.GetDetail())
	}
	return nil
}
