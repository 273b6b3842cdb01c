-- The identity provider's state. Lists and maps that are only ever read and
-- written whole (redirect URIs, attributes, required actions) are JSON text.

-- +goose Up
CREATE TABLE realms (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL UNIQUE,
    enabled                  INTEGER NOT NULL,
    access_token_lifespan    INTEGER NOT NULL,
    sso_session_idle_timeout INTEGER NOT NULL,
    sso_session_max_lifespan INTEGER NOT NULL,
    password_policy          TEXT NOT NULL DEFAULT '',
    default_role_id          TEXT NOT NULL DEFAULT '',
    created_ms               INTEGER NOT NULL
);

CREATE TABLE clients (
    id                   TEXT PRIMARY KEY,
    realm_id             TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    client_id            TEXT NOT NULL,
    name                 TEXT NOT NULL DEFAULT '',
    secret               TEXT NOT NULL DEFAULT '',
    enabled              INTEGER NOT NULL,
    public_client        INTEGER NOT NULL,
    bearer_only          INTEGER NOT NULL,
    direct_access_grants INTEGER NOT NULL,
    service_accounts     INTEGER NOT NULL,
    standard_flow        INTEGER NOT NULL,
    full_scope_allowed   INTEGER NOT NULL,
    protocol             TEXT NOT NULL,
    redirect_uris        TEXT NOT NULL DEFAULT '[]',
    web_origins          TEXT NOT NULL DEFAULT '[]',
    attributes           TEXT NOT NULL DEFAULT '{}',
    default_scopes       TEXT NOT NULL DEFAULT '[]',
    optional_scopes      TEXT NOT NULL DEFAULT '[]',
    UNIQUE (realm_id, client_id)
);

-- client_uuid is '' for realm roles and the owning client's id otherwise.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    realm_id    TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    client_uuid TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    attributes  TEXT NOT NULL DEFAULT '{}',
    UNIQUE (realm_id, client_uuid, name)
);

CREATE TABLE role_composites (
    parent_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    child_id  TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);

CREATE TABLE users (
    id                     TEXT PRIMARY KEY,
    realm_id               TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    username               TEXT NOT NULL,
    email                  TEXT,
    first_name             TEXT NOT NULL DEFAULT '',
    last_name              TEXT NOT NULL DEFAULT '',
    enabled                INTEGER NOT NULL,
    email_verified         INTEGER NOT NULL,
    created_ms             INTEGER NOT NULL,
    attributes             TEXT NOT NULL DEFAULT '{}',
    required_actions       TEXT NOT NULL DEFAULT '[]',
    service_account_client TEXT NOT NULL DEFAULT '',
    UNIQUE (realm_id, username)
);
CREATE UNIQUE INDEX users_email ON users (realm_id, email) WHERE email IS NOT NULL;

CREATE TABLE credentials (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    realm_id        TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL,
    scope           TEXT NOT NULL,
    started_ms      INTEGER NOT NULL,
    last_refresh_ms INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- secret is a PKCS#8 RSA private key (cert its self-signed certificate) or
-- the raw HMAC key.
CREATE TABLE keys (
    kid        TEXT PRIMARY KEY,
    realm_id   TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    alg        TEXT NOT NULL,
    use        TEXT NOT NULL,
    secret     BLOB NOT NULL,
    cert       BLOB,
    active     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Access tokens revoked before they expire (RFC 7009), by jti.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);

-- +goose Down
DROP TABLE revoked_tokens;
DROP TABLE keys;
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE credentials;
DROP TABLE users;
DROP TABLE role_composites;
DROP TABLE roles;
DROP TABLE clients;
DROP TABLE realms;
