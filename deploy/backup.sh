#!/usr/bin/env bash
# Back up the database: pg_dump --format=custom into BACKUP_DIR (default /var/backups/codt2023) as
# codt2023-<UTC date and time>.dump, then remove dumps older than BACKUP_KEEP_DAYS days (default 14).
# Reads DATABASE_URL (postgresql://user[:password]@host[:port]/db) like the app. Prints the new file's path.
# Run by deploy/systemd/codt2023-backup.service; tried with a restore in tests/test_deploy.py.
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL is not set (postgresql://user@host/db)}"
dir=${BACKUP_DIR:-/var/backups/codt2023}
keep_days=${BACKUP_KEEP_DAYS:-14}
# libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://).
url=$(printf '%s' "$DATABASE_URL" | sed -E 's#^postgres(ql)?\+[A-Za-z0-9_]+://#postgresql://#')
# A password goes to pg_dump in its environment, not on its command line, where every user of the host sees it.
if [[ $url =~ ^([a-z]+://[^:@/]+):([^@/]*)@(.*)$ ]]; then
  password=${BASH_REMATCH[2]//\\/\\\\}          # a literal backslash stays one
  printf -v PGPASSWORD '%b' "${password//%/\\x}"   # percent-decoded, as in any URL
  export PGPASSWORD
  url="${BASH_REMATCH[1]}@${BASH_REMATCH[3]}"
fi

umask 077  # the dump holds every registrant's personal data
mkdir -p "$dir"
file="$dir/codt2023-$(date -u +%Y%m%dT%H%M%SZ).dump"
# Written under another name and renamed when complete: a dump cut short never looks like a backup, and is removed.
trap 'rm -f "$file.partial"' EXIT
pg_dump --format=custom --file="$file.partial" --dbname="$url"
mv "$file.partial" "$file"
find "$dir" -maxdepth 1 -name 'codt2023-*.dump*' -mtime +"$keep_days" -delete
echo "$file"
