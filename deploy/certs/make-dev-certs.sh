#!/usr/bin/env bash
# A throwaway CA and certificates for trying out docker-compose.prod.yml (Mosquitto over TLS with client
# certificates). For development and tests only: a city uses its own CA and keeps its keys elsewhere.
#
#   deploy/certs/make-dev-certs.sh [OUTDIR]        default: deploy/certs/dev (git-ignored; never commit keys)
#   MQTT_SAN="DNS:mqtt.city.example" deploy/certs/make-dev-certs.sh    extra names for the broker's certificate
#
# Makes, in OUTDIR:
#   ca.crt ca.key                    the dev CA
#   server.crt server.key            the broker: CN mosquitto, names mosquitto, localhost, 127.0.0.1 (+ MQTT_SAN)
#   <name>.crt <name>.key            a client certificate per name; its CN is the MQTT username (see
#                                    ../mosquitto/acl): lifeline, lifeline-bridge, and one per domain for sensors
# Refuses to overwrite an existing CA: remove OUTDIR first to start again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/dev}"
days="${CERT_DAYS:-825}"
clients=(lifeline lifeline-bridge gas water drainage bridge elevator crowd)

command -v openssl >/dev/null || { echo "make-dev-certs: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
if [ -e "$out/ca.key" ]; then
  echo "make-dev-certs: $out/ca.key exists; remove $out to make new certificates" >&2
  exit 1
fi
mkdir -p "$out"
cd "$out"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=lifeline dev/CN=lifeline dev CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() {  # issue <name> <extendedKeyUsage> [subjectAltName]
  local name=$1 usage=$2 san=${3:-}
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/O=lifeline dev/CN=$name" -out "$tmp/$name.csr"
  {
    echo "basicConstraints=critical,CA:false"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$tmp/$name.ext"
  openssl x509 -req -in "$tmp/$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$tmp/$name.ext" -out "$name.crt" 2>/dev/null
}

issue server serverAuth "DNS:mosquitto,DNS:localhost,IP:127.0.0.1${MQTT_SAN:+,$MQTT_SAN}"
for c in "${clients[@]}"; do
  issue "$c" clientAuth
done
rm -f ca.srl
chmod 644 ./*.crt
# The broker runs as uid 1883 in its container and must read its key: readable by all, for a dev key only.
# In production mount the key owned by the broker's user, mode 0400.
chmod 644 server.key
echo "make-dev-certs: CA, server and ${#clients[@]} client certificates in $out" >&2
