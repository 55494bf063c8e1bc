#!/usr/bin/env bash
# One command from a fresh Debian bookworm box to a running CareHub with the demo organisations:
# installs what is missing, builds, creates the demo accounts, and starts the hub.
#   ./scripts/demo.sh [--listen 127.0.0.1:8080]
set -euo pipefail
source "$(dirname "$0")/env.sh"
./scripts/setup.sh
swift build -c release --product carehub
carehub=".build/release/carehub"
data="${CAREHUB_DATA:-./data}"

listen="127.0.0.1:8080"
if [ "${1:-}" = "--listen" ] && [ -n "${2:-}" ]; then listen="$2"; fi

# The HIPAA demo clinic exports each ended chat's transcript, encrypted to a records certificate,
# before erasing it (pipeline.conf: export_dir= and export_key=). Create the directory and, if
# there is none, a certificate with its key. A real records office keeps that key off this host.
export_dir=/var/lib/carehub/exports
export_cert=/etc/carehub/records-cert.pem
export_key=/etc/carehub/records-key.pem
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
if [ ! -d "$export_dir" ]; then
  "${as_root[@]}" install -d -m 0700 -o "$(id -u)" -g "$(id -g)" "$export_dir"
fi
if [ ! -f "$export_cert" ]; then
  "${as_root[@]}" install -d -m 0755 /etc/carehub
  "${as_root[@]}" openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=Riverside Family Clinic records (CareHub demo)" \
    -keyout "$export_key" -out "$export_cert" 2>/dev/null
  "${as_root[@]}" chown "$(id -u):$(id -g)" "$export_key"
  "${as_root[@]}" chmod 0600 "$export_key"
  "${as_root[@]}" chmod 0644 "$export_cert"
fi

"$carehub" config check pipeline.conf

# Demo accounts: org user role password
demo_users=(
  "riverside-clinic admin     admin riverside-chief-demo-pass"
  "riverside-clinic nurse.joy staff riverside-nurse-demo-pass"
  "lotus-wellness   coach.sam staff lotus-coach-demo-pass"
)
for entry in "${demo_users[@]}"; do
  read -r org user role password <<<"$entry"
  if ! "$carehub" user list --org "$org" --data "$data" | cut -f1 | grep -qx "$user"; then
    printf '%s\n' "$password" | "$carehub" user add --org "$org" --user "$user" --role "$role" --data "$data" >/dev/null
  fi
done

host="${listen%:*}"; port="${listen##*:}"
cat <<INFO

CareHub demo
  Home:           http://$host:$port/
  Staff console:  http://$host:$port/staff.html?org=riverside-clinic
  Admin console:  http://$host:$port/admin.html?org=riverside-clinic   (admins; edits pipeline.conf live)
  Widget (as on a clinic's site): http://$host:$port/widget-demo.html
  WebSocket:    ws://$host:$port/ws   (protocol: docs/PROTOCOL.md)
  Data:         $data  (SQLite + master.key)
  Transcripts:  $export_dir  (riverside-clinic, encrypted; open one with
                openssl cms -decrypt -inform DER -inkey $export_key -in FILE.json.cms)

  Demo staff accounts (organisation / user / password). Riverside is in HIPAA mode: its staff
  enrol a TOTP authenticator app at first login (the page shows a QR code to scan); admins
  always do.
    riverside-clinic (HIPAA)  admin      riverside-chief-demo-pass
    riverside-clinic (HIPAA)  nurse.joy  riverside-nurse-demo-pass
    lotus-wellness            coach.sam  lotus-coach-demo-pass

  Stop with Ctrl-C; reload pipeline.conf with: kill -HUP \$(pgrep -f 'carehub serve')
INFO
exec "$carehub" serve --config pipeline.conf --data "$data" --listen "$listen" --web web-static
