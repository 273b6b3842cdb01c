// Package auth is the identity guard shared by every Comfortech gateway and
// service (ARCHITECTURE §3 and §4).
//
// A [Verifier] checks Keycloak access tokens against the realm's JWKS: RS256
// signature, exact issuer, expiry with leeway, typ "Bearer" and an allowed
// authorized party (azp). A verified token becomes a [Principal], which the
// HTTP [Middleware] and the gRPC interceptors ([UnaryServerInterceptor],
// [StreamServerInterceptor]) put in the request context for handlers to read
// with [PrincipalFrom].
//
// Outgoing gRPC calls carry an identity too: [ForwardCredentials] forwards the
// caller's own bearer token and falls back to a service-account token from a
// client-credentials [TokenSource].
//
// Every failure is one of two sentinel errors, [ErrUnauthenticated] or
// [ErrForbidden]; [StatusError] turns them into gRPC status errors whose
// messages are safe to show a client (they never contain the token).
//
// Wiring, in a Run function:
//
//	v, err := auth.NewVerifier(ctx, auth.Config{
//		Issuer:         cfg.IssuerURL, // https://…/realms/comfortech
//		AllowedClients: []string{"comfortech", "comfortech-admin", "svc-gateway-main"},
//		Logger:         log,
//	})
//	checker.Add("jwks", v.Ready)
//
//	// gateway
//	handler = auth.Middleware(v, envelope.WriteError, auth.WithPublicPaths("/docs", "/v1/auth/login"))(handler)
//
//	// service
//	grpc.NewServer(
//		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(v, auth.WithMethodRoles(roles))),
//		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(v, auth.WithMethodRoles(roles))))
//
//	// outgoing calls
//	ts, err := auth.NewTokenSource(auth.ClientCredentialsConfig{Issuer: …, ClientID: …, ClientSecret: …})
//	grpc.NewClient(target, grpc.WithPerRPCCredentials(auth.ForwardCredentials(ts)), …)
package auth
