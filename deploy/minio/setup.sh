#!/bin/sh
# Creates the local stack's buckets and MinIO users (run once by the compose service
# `minio-setup`, with the mc client). Every secret is read from /run/secrets; none is stored
# here.
#   drdsurv          the store (tables, releases, reports)
#   drdsurv-inbox    submitters' inboxes: <source>/<submitter>/
# Users:
#   drdsurv-app      the workers, scheduler and server: read and write both buckets
#   <submitter>      one per submitter: may only list, put and get under its own inbox prefix
set -eu
mc alias set local http://minio:9000 "$(cat /run/secrets/minio_root_user)" "$(cat /run/secrets/minio_root_password)"
mc mb --ignore-existing local/drdsurv local/drdsurv-inbox

cat > /tmp/app.json <<JSON
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],
 "Resource":["arn:aws:s3:::drdsurv","arn:aws:s3:::drdsurv/*","arn:aws:s3:::drdsurv-inbox","arn:aws:s3:::drdsurv-inbox/*"]}]}
JSON
mc admin policy create local drdsurv-app /tmp/app.json
mc admin user add local drdsurv-app "$(cat /run/secrets/app_secret_key)"
mc admin policy attach local drdsurv-app --user drdsurv-app

# One user and policy per submitter: "<source>/<submitter>" lines in submitters.txt, the
# secret in /run/secrets/submitter_<submitter>.
while read -r prefix; do
  [ -z "$prefix" ] && continue
  sub=${prefix#*/}
  cat > "/tmp/$sub.json" <<JSON
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::drdsurv-inbox"],
  "Condition":{"StringLike":{"s3:prefix":["$prefix/*"]}}},
 {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":["arn:aws:s3:::drdsurv-inbox/$prefix/*"]}]}
JSON
  mc admin policy create local "submitter-$sub" "/tmp/$sub.json"
  mc admin user add local "$sub" "$(cat "/run/secrets/submitter_$sub")"
  mc admin policy attach local "submitter-$sub" --user "$sub"
done < /setup/submitters.txt
echo "buckets and users ready"
