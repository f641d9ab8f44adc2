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

echo "== create the label (YAML body)"
LABEL=$(api LabelService/Create application/yaml < "$HERE/label-linux.yaml" | field uid)
echo "label $LABEL"

echo "== create the application"
APP=$(echo "{\"application\":{\"label_uid\":\"$LABEL\",\"metadata\":{\"JOB\":\"build-42\"}}}" | api ApplicationService/Create | field uid)
echo "application $APP"

echo "== wait for ALLOCATED"
while :; do
  STATE=$(echo "{\"application_uid\":\"$APP\"}" | api ApplicationService/GetState | field status)
  echo "  $STATE"
  [ "$STATE" = ALLOCATED ] && break
  [ "$STATE" = ERROR ] && exit 1
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
