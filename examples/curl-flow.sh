#!/bin/sh
# The seed's flow with curl only: run the node, create a Label, send an
# Application, receive the resource, read its metadata, snapshot, give it back.
#
#   aquarium-fish &            # first start prints the admin password
#   sh examples/curl-flow.sh
#
# Works against a node started with no config (embedded emulated AWS). For a
# node with --insecure-http set NODE=http://127.0.0.1:8001.
set -eu
NODE=${NODE:-https://127.0.0.1:8001}
DIR=${DIR:-aquarium-fish-data}
USER=${AQUARIUM_USER:-admin}
PASS=${AQUARIUM_PASSWORD:-$(cat "$DIR/admin.password")}
HERE=$(cd "$(dirname "$0")" && pwd)

api() { # api Service/Method [content-type] < body
  curl -sS --fail-with-body --cacert "$DIR/ca.crt" -u "$USER:$PASS" \
    -H "Content-Type: ${2:-application/json}" --data-binary @- \
    "$NODE/grpc/aquarium.v2.$1"
}
field() { # field NAME: the first "NAME": "value" of a JSON answer
  sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1
}

die() { echo "error: $*" >&2; exit 1; }

echo "== create the label (YAML body)"
if OUT=$(api LabelService/Create application/yaml < "$HERE/label-linux.yaml"); then
  LABEL=$(echo "$OUT" | field uid)
else
  case "$OUT" in
  *already_exists*) # created by an earlier run: use the latest version
    LABEL=$(echo '{"name":"ubuntu-linux","version":"last"}' | api LabelService/List | field uid) ;;
  *) die "$OUT" ;;
  esac
fi
[ -n "$LABEL" ] || die "no label uid"
echo "label $LABEL"

echo "== create the application"
OUT=$(echo "{\"application\":{\"label_uid\":\"$LABEL\",\"metadata\":{\"JOB\":\"build-42\"}}}" | api ApplicationService/Create) || die "$OUT"
APP=$(echo "$OUT" | field uid)
echo "application $APP"

echo "== wait for ALLOCATED"
i=0
while :; do
  OUT=$(echo "{\"application_uid\":\"$APP\"}" | api ApplicationService/GetState) || die "$OUT"
  STATE=$(echo "$OUT" | field status)
  echo "  $STATE"
  [ "$STATE" = ALLOCATED ] && break
  [ "$STATE" = ERROR ] && die "$OUT"
  i=$((i+1)); [ $i -lt 600 ] || die "not ALLOCATED after 10 minutes"
  sleep 1
done

echo "== the resource"
echo "{\"application_uid\":\"$APP\"}" | api ApplicationService/GetResource
echo

echo "== snapshot task"
echo "{\"task\":{\"application_uid\":\"$APP\",\"task\":\"snapshot\",\"when\":\"ALLOCATED\",\"options\":{\"full\":true}}}" | api ApplicationService/CreateTask
echo

# The resource itself reads its metadata (from its own IP address):
#   curl -k "$NODE/meta/v1/data/?format=env&prefix=FISH"

echo "== deallocate"
echo "{\"application_uid\":\"$APP\"}" | api ApplicationService/Deallocate
echo
