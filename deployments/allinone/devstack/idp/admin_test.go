package idp_test

import (
	"context"
	"slices"
	"testing"

	"github.com/Nerzal/gocloak/v13"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

func roleNames(roles []*gocloak.Role) []string {
	var out []string
	for _, r := range roles {
		out = append(out, *r.Name)
	}
	slices.Sort(out)
	return out
}

func TestGocloakAdmin(t *testing.T) {
	t.Parallel()
	var sent []idp.ActionsEmail
	srv := idptest.Start(t, func(c *idp.Config) {
		c.ActionsEmail = func(_ context.Context, m idp.ActionsEmail) error {
			sent = append(sent, m)
			return nil
		}
	})
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	// The auth gateway's identity: a service account with realm-management roles.
	sa := must[*gocloak.JWT](t)(gc.LoginClient(ctx, authGateway, srv.ClientSecret(t, authGateway), realm)).AccessToken
	master := must[*gocloak.JWT](t)(gc.LoginAdmin(ctx, "admin", srv.MasterPassword, "master")).AccessToken

	for _, tc := range []struct {
		name  string
		token string
	}{{"service account", sa}, {"master admin", master}} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token
			phone := "+7951000000" + map[string]string{"service account": "1", "master admin": "2"}[tc.name]
			id := must[string](t)(gc.CreateUser(ctx, tok, realm, gocloak.User{
				Username: gocloak.StringP(phone), Enabled: gocloak.BoolP(true), FirstName: gocloak.StringP("Ivan"),
				Email:       gocloak.StringP("Ivan." + phone[1:] + "@Example.com"),
				Credentials: &[]gocloak.CredentialRepresentation{{Type: gocloak.StringP("password"), Value: gocloak.StringP("Secret123"), Temporary: gocloak.BoolP(false)}},
			}))
			u := must[*gocloak.User](t)(gc.GetUserByID(ctx, tok, realm, id))
			if *u.Username != phone || *u.Email != "ivan."+phone[1:]+"@example.com" || !*u.Enabled || *u.CreatedTimestamp == 0 || u.LastName != nil {
				t.Fatalf("user = %+v", u)
			}
			if _, err := gc.Login(ctx, appClient, "", realm, phone, "Secret123"); err != nil {
				t.Fatalf("login with the created password: %v", err)
			}

			_, err := gc.CreateUser(ctx, tok, realm, gocloak.User{Username: gocloak.StringP(phone)})
			apiError(t, err, 409, "409 Conflict: User exists with same username")
			_, err = gc.CreateUser(ctx, tok, realm, gocloak.User{Username: gocloak.StringP(phone + "9"), Email: u.Email})
			apiError(t, err, 409, "User exists with same email")
			_, err = gc.CreateUser(ctx, tok, realm, gocloak.User{Email: gocloak.StringP("x@example.com")})
			apiError(t, err, 400, "User name is missing")
			_, err = gc.CreateUser(ctx, tok, realm, gocloak.User{Username: gocloak.StringP(phone + "8"),
				Credentials: &[]gocloak.CredentialRepresentation{{Type: gocloak.StringP("password"), Value: gocloak.StringP("short1")}}})
			apiError(t, err, 400, "invalidPasswordMinLengthMessage: Invalid password: minimum length 8.")

			// GetUsers: exact, substring, search, paging.
			got := must[[]*gocloak.User](t)(gc.GetUsers(ctx, tok, realm, gocloak.GetUsersParams{Username: gocloak.StringP(phone), Exact: gocloak.BoolP(true)}))
			if len(got) != 1 || *got[0].ID != id {
				t.Fatalf("exact = %v", got)
			}
			got = must[[]*gocloak.User](t)(gc.GetUsers(ctx, tok, realm, gocloak.GetUsersParams{Search: gocloak.StringP(phone[:6])}))
			if len(got) < 1 {
				t.Fatalf("search = %v", got)
			}
			got = must[[]*gocloak.User](t)(gc.GetUsers(ctx, tok, realm, gocloak.GetUsersParams{Max: gocloak.IntP(1), First: gocloak.IntP(0)}))
			if len(got) != 1 {
				t.Fatalf("max=1 = %d users", len(got))
			}
			got = must[[]*gocloak.User](t)(gc.GetUsers(ctx, tok, realm, gocloak.GetUsersParams{Search: gocloak.StringP("service-account")}))
			if len(got) != 0 {
				t.Fatalf("service accounts listed: %d", len(got))
			}

			// UpdateUser keeps what is not sent.
			if err := gc.UpdateUser(ctx, tok, realm, gocloak.User{ID: &id, LastName: gocloak.StringP("Petrov")}); err != nil {
				t.Fatal(err)
			}
			u = must[*gocloak.User](t)(gc.GetUserByID(ctx, tok, realm, id))
			if *u.FirstName != "Ivan" || *u.LastName != "Petrov" || !*u.Enabled {
				t.Fatalf("after update = %+v", u)
			}

			// SetPassword with the policy.
			if err := gc.SetPassword(ctx, tok, id, realm, "NewSecret456", false); err != nil {
				t.Fatal(err)
			}
			err = gc.SetPassword(ctx, tok, id, realm, "nodigitshere", false)
			apiError(t, err, 400, "invalidPasswordMinDigitsMessage: Invalid password: must contain at least 1 numerical digits.")
			err = gc.SetPassword(ctx, tok, id, realm, phone, false)
			apiError(t, err, 400, "invalidPasswordNotUsernameMessage")
			if _, err := gc.Login(ctx, appClient, "", realm, phone, "NewSecret456"); err != nil {
				t.Fatalf("login with the new password: %v", err)
			}

			// Realm roles.
			roles := must[[]*gocloak.Role](t)(gc.GetRealmRoles(ctx, tok, realm, gocloak.GetRoleParams{}))
			if want := []string{"default-roles-comfortech", "offline_access", "uma_authorization"}; !slices.Equal(roleNames(roles), want) {
				t.Fatalf("realm roles = %v", roleNames(roles))
			}
			offline := must[*gocloak.Role](t)(gc.GetRealmRole(ctx, tok, realm, "offline_access"))
			_, err = gc.GetRealmRole(ctx, tok, realm, "nope")
			apiError(t, err, 404, "Could not find role")
			if err := gc.AddRealmRoleToUser(ctx, tok, realm, id, []gocloak.Role{*offline}); err != nil {
				t.Fatal(err)
			}
			err = gc.AddRealmRoleToUser(ctx, tok, realm, id, []gocloak.Role{{Name: gocloak.StringP("offline_access"), ID: gocloak.StringP("wrong-id")}})
			apiError(t, err, 404, "Role not found")
			err = gc.AddRealmRoleToUser(ctx, tok, realm, id, []gocloak.Role{{Name: gocloak.StringP("offline_access")}})
			apiError(t, err, 404, "Role not found")
			if got := roleNames(must[[]*gocloak.Role](t)(gc.GetRealmRolesByUserID(ctx, tok, realm, id))); !slices.Equal(got, []string{"default-roles-comfortech", "offline_access"}) {
				t.Fatalf("realm role mappings = %v", got)
			}

			// Clients and client roles.
			clients := must[[]*gocloak.Client](t)(gc.GetClients(ctx, tok, realm, gocloak.GetClientsParams{ClientID: gocloak.StringP(appClient)}))
			if len(clients) != 1 || *clients[0].ClientID != appClient || !*clients[0].PublicClient || !*clients[0].DirectAccessGrantsEnabled {
				t.Fatalf("clients = %v", clients)
			}
			all := must[[]*gocloak.Client](t)(gc.GetClients(ctx, tok, realm, gocloak.GetClientsParams{}))
			if len(all) < 10 {
				t.Fatalf("%d clients", len(all))
			}
			cid := *clients[0].ID
			croles := must[[]*gocloak.Role](t)(gc.GetClientRoles(ctx, tok, realm, cid, gocloak.GetRoleParams{}))
			if !slices.Equal(roleNames(croles), []string{"admin", "service", "user"}) {
				t.Fatalf("client roles = %v", roleNames(croles))
			}
			var userRole gocloak.Role
			for _, r := range croles {
				if *r.Name == "user" {
					userRole = *r
				}
			}
			if !*userRole.ClientRole || *userRole.ContainerID != cid {
				t.Fatalf("role = %+v", userRole)
			}
			if err := gc.AddClientRolesToUser(ctx, tok, realm, cid, id, []gocloak.Role{userRole}); err != nil {
				t.Fatal(err)
			}
			err = gc.AddClientRolesToUser(ctx, tok, realm, "no-such-client", id, []gocloak.Role{userRole})
			apiError(t, err, 404, "Client not found")
			if got := roleNames(must[[]*gocloak.Role](t)(gc.GetClientRolesByUserID(ctx, tok, realm, cid, id))); !slices.Equal(got, []string{"user"}) {
				t.Fatalf("client role mappings = %v", got)
			}
			tokAfter := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, phone, "NewSecret456"))
			ra := claimsOf(t, gc, tokAfter.AccessToken)["resource_access"].(map[string]any)
			if ra[appClient] == nil {
				t.Fatalf("resource_access = %v", ra)
			}

			// ExecuteActionsEmail goes to the configured sender.
			n := len(sent)
			if err := gc.ExecuteActionsEmail(ctx, tok, realm, gocloak.ExecuteActionsEmail{UserID: &id,
				Actions: &[]string{"UPDATE_PASSWORD"}, Lifespan: gocloak.IntP(600)}); err != nil {
				t.Fatal(err)
			}
			if len(sent) != n+1 || sent[n].Email != *u.Email || sent[n].Lifespan.Seconds() != 600 {
				t.Fatalf("sent = %+v", sent)
			}

			// Delete.
			if err := gc.DeleteUser(ctx, tok, realm, id); err != nil {
				t.Fatal(err)
			}
			_, err = gc.GetUserByID(ctx, tok, realm, id)
			apiError(t, err, 404, "User not found")
			_, err = gc.Login(ctx, appClient, "", realm, phone, "NewSecret456")
			apiError(t, err, 401, "Invalid user credentials")
		})
	}
}

func TestGocloakAdminErrors(t *testing.T) {
	t.Parallel()
	srv := idptest.Start(t)
	ctx := context.Background()
	gc := gocloak.NewClient(srv.URL)
	master := must[*gocloak.JWT](t)(gc.LoginAdmin(ctx, "admin", srv.MasterPassword, "master")).AccessToken
	user := srv.CreateUser(t, "+79030000001")
	userTok := must[*gocloak.JWT](t)(gc.Login(ctx, appClient, "", realm, user.Username, user.Password)).AccessToken
	svc := must[*gocloak.JWT](t)(gc.LoginClient(ctx, mainGateway, srv.ClientSecret(t, mainGateway), realm)).AccessToken
	noMail := must[string](t)(gc.CreateUser(ctx, master, realm, gocloak.User{Username: gocloak.StringP("+79030000002"), Enabled: gocloak.BoolP(true)}))
	withMail := must[string](t)(gc.CreateUser(ctx, master, realm, gocloak.User{Username: gocloak.StringP("+79030000003"),
		Enabled: gocloak.BoolP(true), Email: gocloak.StringP("a@example.com")}))

	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"no token", func() error {
			_, err := gc.GetUsers(ctx, "", realm, gocloak.GetUsersParams{})
			return err
		}, 401, "HTTP 401 Unauthorized"},
		{"garbage token", func() error {
			_, err := gc.GetUsers(ctx, "a.b.c", realm, gocloak.GetUsersParams{})
			return err
		}, 401, "HTTP 401 Unauthorized"},
		{"user token", func() error {
			_, err := gc.GetUsers(ctx, userTok, realm, gocloak.GetUsersParams{})
			return err
		}, 403, "403 Forbidden: HTTP 403 Forbidden"},
		{"service account without realm-management roles", func() error {
			_, err := gc.CreateUser(ctx, svc, realm, gocloak.User{Username: gocloak.StringP("x")})
			return err
		}, 403, "HTTP 403 Forbidden"},
		{"service account token on another realm", func() error {
			_, err := gc.GetUsers(ctx, svc, "master", gocloak.GetUsersParams{})
			return err
		}, 403, "HTTP 403 Forbidden"},
		{"unknown realm", func() error {
			_, err := gc.GetUsers(ctx, master, "nowhere", gocloak.GetUsersParams{})
			return err
		}, 404, "Realm not found."},
		{"unknown user", func() error {
			_, err := gc.GetUserByID(ctx, master, realm, "00000000-0000-0000-0000-000000000000")
			return err
		}, 404, "User not found"},
		{"unknown client", func() error {
			_, err := gc.GetClientRoles(ctx, master, realm, "00000000-0000-0000-0000-000000000000", gocloak.GetRoleParams{})
			return err
		}, 404, "Could not find client"},
		{"actions email without email", func() error {
			return gc.ExecuteActionsEmail(ctx, master, realm, gocloak.ExecuteActionsEmail{UserID: &noMail, Actions: &[]string{"UPDATE_PASSWORD"}})
		}, 400, "User email missing"},
		{"actions email without a mail server", func() error {
			return gc.ExecuteActionsEmail(ctx, master, realm, gocloak.ExecuteActionsEmail{UserID: &withMail, Actions: &[]string{"UPDATE_PASSWORD"}})
		}, 500, "Failed to send execute actions email"},
		{"invalid email", func() error {
			_, err := gc.CreateUser(ctx, master, realm, gocloak.User{Username: gocloak.StringP("+79030000009"), Email: gocloak.StringP("not-an-email")})
			return err
		}, 400, "invalidEmailMessage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apiError(t, tc.call(), tc.code, tc.msg)
		})
	}

	t.Run("a new user is disabled unless enabled is sent", func(t *testing.T) {
		id := must[string](t)(gc.CreateUser(ctx, master, realm, gocloak.User{Username: gocloak.StringP("+79030000010")}))
		u := must[*gocloak.User](t)(gc.GetUserByID(ctx, master, realm, id))
		if *u.Enabled {
			t.Fatal("enabled")
		}
		roles := roleNames(must[[]*gocloak.Role](t)(gc.GetRealmRolesByUserID(ctx, master, realm, id)))
		if !slices.Equal(roles, []string{"default-roles-comfortech"}) {
			t.Fatalf("roles = %v", roles)
		}
	})
}
