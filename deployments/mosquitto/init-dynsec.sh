#!/bin/sh
# Creates the dynamic-security plugin's file on the broker's first start, as
# an init step before Mosquitto (docker-compose.yml's mosquitto-init, the
# Kubernetes StatefulSet's init container), in the eclipse-mosquitto image:
#
#   - the plugin's admin account, which the device service drives the plugin
#     with (its MOSQUITTO_DYNSEC_USERNAME and MOSQUITTO_DYNSEC_PASSWORD), made
#     by `mosquitto_ctrl dynsec init`;
#   - the device service's own MQTT account (its MQTT_USERNAME and
#     MQTT_PASSWORD) with role device-service: publish, receive and subscribe
#     on every topic except $-topics, so not on the plugin's control topic.
#
# The role and client are added through the plugin itself, by a private
# broker on the loopback interface, so the file is exactly what the plugin
# writes. A file that exists is left alone: the plugin owns it from then on
# (rotate the passwords with mosquitto_ctrl). POSIX sh: the image has busybox.
#
# Environment: MOSQUITTO_DYNSEC_PASSWORD and MQTT_PASSWORD (required),
# MOSQUITTO_DYNSEC_USERNAME (admin), MQTT_USERNAME (device-service),
# DYNSEC_FILE (/mosquitto/data/dynamic-security.json), MOSQUITTO_PLUGIN
# (/usr/lib/mosquitto_dynamic_security.so), INIT_PORT (18830).
set -eu

file=${DYNSEC_FILE:-/mosquitto/data/dynamic-security.json}
plugin=${MOSQUITTO_PLUGIN:-/usr/lib/mosquitto_dynamic_security.so}
admin=${MOSQUITTO_DYNSEC_USERNAME:-admin}
service=${MQTT_USERNAME:-device-service}
port=${INIT_PORT:-18830}
: "${MOSQUITTO_DYNSEC_PASSWORD:?MOSQUITTO_DYNSEC_PASSWORD is required (the device service's dynamic-security admin password)}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is required (the device service's MQTT password)}"

if [ -s "$file" ]; then
  echo "init-dynsec: $file exists, left as it is"
  exit 0
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mosquitto_ctrl dynsec init "$tmp/dynamic-security.json" "$admin" "$MOSQUITTO_DYNSEC_PASSWORD" >/dev/null

{
  echo "per_listener_settings false"
  echo "allow_anonymous false"
  echo "listener $port 127.0.0.1"
  echo "plugin $plugin"
  echo "plugin_opt_config_file $tmp/dynamic-security.json"
  echo "persistence false"
  # As root, mosquitto would switch to user mosquitto, who cannot write $tmp.
  if [ "$(id -u)" = 0 ]; then echo "user root"; fi
} >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pid=$!

# mosquitto_ctrl warns about the unencrypted connection on every call: the
# private broker listens on loopback only, so its output is shown on failure.
ctl() {
  if ! mosquitto_ctrl -h 127.0.0.1 -p "$port" -u "$admin" -P "$MOSQUITTO_DYNSEC_PASSWORD" dynsec "$@" >"$tmp/ctl.out" 2>&1; then
    echo "init-dynsec: mosquitto_ctrl dynsec $1 failed:" >&2
    cat "$tmp/ctl.out" >&2
    return 1
  fi
}
tries=0
until ctl listRoles 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 50 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "init-dynsec: the private broker did not answer:" >&2
    cat "$tmp/mosquitto.log" >&2
    exit 1
  fi
  sleep 0.2
done

ctl createRole device-service
for acl in publishClientSend publishClientReceive subscribePattern unsubscribePattern; do
  ctl addRoleACL device-service "$acl" '#' allow
done
ctl createClient "$service" -p "$MQTT_PASSWORD"
ctl addClientRole "$service" device-service

# The plugin has written every change; stop the broker before the copy.
kill "$pid"
wait "$pid" || true
pid=""

mkdir -p "$(dirname "$file")"
cp "$tmp/dynamic-security.json" "$file.new"
chmod 600 "$file.new"
if id mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown mosquitto:mosquitto "$file.new"; fi
mv "$file.new" "$file"
echo "init-dynsec: created $file with accounts $admin (dynamic-security admin) and $service (device service)"
