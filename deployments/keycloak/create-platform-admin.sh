#!/bin/bash
# Creates (or resets) the platform admin in a real Keycloak, as the
# all-in-one does for its embedded identity provider: user `admin` of realm
# comfortech with the comfortech client roles admin and user, password
# COMFORT_ADMIN_PASSWORD. Runs in the Keycloak image (kcadm.sh), once
# Keycloak is ready and has imported realm-comfortech.json:
# docker-compose.yml's keycloak-init. Idempotent.
#
# Environment: KEYCLOAK_URL (http://keycloak:8080), KC_BOOTSTRAP_ADMIN_USERNAME
# (admin, the master realm's admin) and COMFORT_ADMIN_PASSWORD (both
# accounts' password).
set -euo pipefail

: "${COMFORT_ADMIN_PASSWORD:?COMFORT_ADMIN_PASSWORD is required}"
url=${KEYCLOAK_URL:-http://keycloak:8080}
realm=comfortech
kc() { /opt/keycloak/bin/kcadm.sh "$@" --config /tmp/kcadm.config; }

kc config credentials --server "$url" --realm master \
  --user "${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}" --password "$COMFORT_ADMIN_PASSWORD"

id=$(kc get users -r "$realm" -q username=admin -q exact=true --fields id --format csv --noquotes)
if [ -z "$id" ]; then
  # A complete profile: Keycloak 24+ asks a user without one to finish it,
  # which a password grant cannot.
  kc create users -r "$realm" -s username=admin -s enabled=true -s emailVerified=true \
    -s firstName=Platform -s lastName=Admin -s email=admin@comfortech.invalid
  echo "created user admin in realm $realm"
fi
kc set-password -r "$realm" --username admin --new-password "$COMFORT_ADMIN_PASSWORD"
kc add-roles -r "$realm" --uusername admin --cclientid comfortech --rolename admin --rolename user
echo "platform admin ready: admin in realm $realm, comfortech roles admin and user"
