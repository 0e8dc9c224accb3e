#!/bin/sh
# Makes the local stack's secrets under deploy/secrets/ (random, never committed). Run once,
# from deploy/. Production secrets come from your secret store instead (docs/runbook.md).
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -f secrets/minio_root_user ] || printf 'drdsurv-root' > secrets/minio_root_user
for f in minio_root_password app_secret_key linkage_key jwt_secret; do
  [ -f "secrets/$f" ] || rand > "secrets/$f"
done
while read -r prefix; do
  [ -z "$prefix" ] && continue
  sub=${prefix#*/}
  [ -f "secrets/submitter_$sub" ] || rand > "secrets/submitter_$sub"
done < minio/submitters.txt
[ -f secrets/app.env ] || printf 'AWS_ACCESS_KEY_ID=drdsurv-app\nAWS_SECRET_ACCESS_KEY=%s\n' "$(cat secrets/app_secret_key)" > secrets/app.env
echo "secrets written to $(pwd)/secrets (mode 600)"
