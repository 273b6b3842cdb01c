// Drives the identity provider with openid-client, as a third-party OIDC
// relying party would: discovery, password grant, refresh, userinfo,
// introspection, revocation and logout. Prints one line per step and exits
// non-zero on the first failure.
//
// usage: node check.mjs <issuer> <public client> <username> <password> <confidential client> <secret>
import * as oidc from 'openid-client';

const [issuer, appClient, username, password, svcClient, svcSecret] = process.argv.slice(2);
if (!svcSecret) {
  console.error('usage: node check.mjs <issuer> <public client> <username> <password> <confidential client> <secret>');
  process.exit(2);
}

function step(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok) process.exit(1);
}

async function expectOAuthError(name, promise, code) {
  try {
    await promise;
    step(name, false, 'no error');
  } catch (e) {
    step(name, e.error === code, `${e.error ?? e.name}: ${e.error_description ?? e.message}`);
  }
}

// The provider is plain HTTP on loopback in tests.
const insecure = { execute: [oidc.allowInsecureRequests] };
const app = await oidc.discovery(new URL(issuer), appClient, undefined, oidc.None(), insecure);
const meta = app.serverMetadata();
step('discovery', meta.issuer === issuer && meta.token_endpoint === `${issuer}/protocol/openid-connect/token`, meta.issuer);

const svc = await oidc.discovery(new URL(issuer), svcClient, svcSecret, oidc.ClientSecretBasic(svcSecret), insecure);

const tokens = await oidc.genericGrantRequest(app, 'password', { username, password, scope: 'openid' });
const claims = tokens.claims();
step('password grant', !!tokens.access_token && !!tokens.refresh_token && claims?.sub && claims.aud === appClient,
  `sub=${claims?.sub} expires_in=${tokens.expires_in}`);

const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token);
step('refresh', !!refreshed.access_token && refreshed.claims()?.sub === claims.sub, `scope=${refreshed.scope}`);

const info = await oidc.fetchUserInfo(app, refreshed.access_token, claims.sub);
step('userinfo', info.sub === claims.sub && info.preferred_username === username.toLowerCase(), info.preferred_username);

const active = await oidc.tokenIntrospection(svc, refreshed.access_token);
step('introspection (active)', active.active === true && active.sub === claims.sub && active.client_id === appClient);

await oidc.tokenRevocation(app, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
step('revocation', true);
const after = await oidc.tokenIntrospection(svc, refreshed.access_token);
step('introspection after revocation', after.active === false);
await expectOAuthError('refresh after revocation', oidc.refreshTokenGrant(app, tokens.refresh_token), 'invalid_grant');

// Keycloak's back-channel logout: POST end_session_endpoint with the refresh token.
const second = await oidc.genericGrantRequest(app, 'password', { username, password, scope: 'openid' });
const res = await fetch(meta.end_session_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ client_id: appClient, refresh_token: second.refresh_token }),
});
step('logout', res.status === 204, `status ${res.status}`);
await expectOAuthError('refresh after logout', oidc.refreshTokenGrant(app, second.refresh_token), 'invalid_grant');
const gone = await oidc.tokenIntrospection(svc, second.access_token);
step('introspection after logout', gone.active === false);
console.log('all checks passed');
