#!/usr/bin/env bash
# Checks deployments/mosquitto against a real Mosquitto 2 (Debian's, which
# scripts/test-services.sh installs): init-dynsec.sh creates the accounts the
# device service needs, the broker starts from mosquitto.conf (its paths
# moved to a temporary directory), refuses anonymous clients, lets the
# device service's account publish and subscribe, and lets the admin account
# drive the plugin; a second init leaves the file alone.
set -euo pipefail
cd "$(dirname "$0")/.."

plugin=/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so
for bin in mosquitto mosquitto_ctrl mosquitto_pub mosquitto_sub; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] \
    || { echo "check-mosquitto: $bin missing (scripts/test-services.sh installs it)" >&2; exit 1; }
done
[ -f "$plugin" ] || { echo "check-mosquitto: $plugin missing" >&2; exit 1; }
PATH=$PATH:/usr/sbin

dir=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
# Two free ports side by side: the broker's and init-dynsec.sh's private one.
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 50); do
  port=$((20000 + RANDOM % 40000))
  if free "$port" && free $((port + 1)); then break; fi
done

export MOSQUITTO_DYNSEC_USERNAME=admin MOSQUITTO_DYNSEC_PASSWORD=checkAdminPass1 \
  MQTT_USERNAME=device-service MQTT_PASSWORD=checkServicePass1 \
  DYNSEC_FILE=$dir/data/dynamic-security.json MOSQUITTO_PLUGIN=$plugin INIT_PORT=$((port + 1))
sh deployments/mosquitto/init-dynsec.sh
before=$(sha256sum "$DYNSEC_FILE")
sh deployments/mosquitto/init-dynsec.sh | grep -q 'left as it is'
[ "$before" = "$(sha256sum "$DYNSEC_FILE")" ] || { echo "check-mosquitto: a second init changed the file" >&2; exit 1; }

# The production configuration, with its paths and port moved here.
sed -e "s#/usr/lib/mosquitto_dynamic_security.so#$plugin#" \
    -e "s#/mosquitto/data/#$dir/data/#" \
    -e "s#^listener 1883\$#listener $port 127.0.0.1#" \
    deployments/mosquitto/mosquitto.conf >"$dir/mosquitto.conf"
grep -q "^listener $port 127.0.0.1\$" "$dir/mosquitto.conf" || { echo "check-mosquitto: no 'listener 1883' line" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then echo "user root" >>"$dir/mosquitto.conf"; fi
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  if mosquitto_ctrl -h 127.0.0.1 -p "$port" -u admin -P "$MOSQUITTO_DYNSEC_PASSWORD" dynsec listClients >"$dir/clients" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$dir/mosquitto.log" >&2; exit 1; }
  sleep 0.2
done
grep -qx 'device-service' "$dir/clients" || { echo "check-mosquitto: clients are: $(cat "$dir/clients")" >&2; exit 1; }

# Anonymous and wrong passwords are refused.
if mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv311 -t x -m y 2>/dev/null; then
  echo "check-mosquitto: an anonymous client could publish" >&2; exit 1
fi
if mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv311 -u device-service -P wrong -t x -m y 2>/dev/null; then
  echo "check-mosquitto: a wrong password was accepted" >&2; exit 1
fi
# The device service's account receives what it subscribed to (through a
# shared subscription, as the service does) and publishes to devices.
mosquitto_sub -h 127.0.0.1 -p "$port" -V mqttv311 -u device-service -P "$MQTT_PASSWORD" -i check-sub \
  -t '$share/device/devices/+/telemetry' -C 1 -W 10 >"$dir/got" &
sub=$!
sleep 1
mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv311 -u device-service -P "$MQTT_PASSWORD" -i check-pub -q 1 \
  -t devices/check-1/telemetry -m '{"ts":1,"metrics":{"temperature":21.5}}'
wait "$sub" || { echo "check-mosquitto: the device service's account received nothing" >&2; cat "$dir/mosquitto.log" >&2; exit 1; }
grep -q temperature "$dir/got"
echo "check-mosquitto: ok (dynamic-security accounts, anonymous refused, service account publishes and subscribes)"
