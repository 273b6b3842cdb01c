// Package accounts finds a recipient's contact details in the data
// service (DataInternalService.GetAccount, called with the notify
// service's service-account token).
package accounts

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/notify/internal/app"
)

// Directory is an app.Directory over the data service.
type Directory struct {
	client datav1.DataInternalServiceClient
}

var _ app.Directory = (*Directory)(nil)

// New returns a directory over conn.
func New(conn grpc.ClientConnInterface) *Directory {
	return &Directory{client: datav1.NewDataInternalServiceClient(conn)}
}

// Account implements app.Directory.
func (d *Directory) Account(ctx context.Context, id string) (*app.Account, error) {
	resp, err := d.client.GetAccount(ctx, &datav1.GetAccountRequest{AccountId: id})
	if status.Code(err) == codes.NotFound {
		return nil, app.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a := resp.GetAccount()
	return &app.Account{ID: a.GetId(), Phone: a.GetPhone(), Email: a.GetEmail(), Locale: a.GetLocale(), Timezone: a.GetTimezone()}, nil
}
