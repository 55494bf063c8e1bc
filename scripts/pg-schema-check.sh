#!/usr/bin/env bash
# Applies Sources/CareHubPostgres/PostgresSchema.swift's migrations to a throwaway PostgreSQL
# server: in order, each in its own transaction, stopping at the first error; prints the
# resulting tables, columns, constraints and indexes; applies them again to a second, fresh
# database and checks that both schemas come out the same. The server lives in a temporary
# directory and is stopped and removed at the end, whatever happens.
#
#   scripts/pg-schema-check.sh            # PostgreSQL 15 from /usr/lib/postgresql/15
#   PG_BIN=/usr/lib/postgresql/16/bin scripts/pg-schema-check.sh
#
# Run as root (the server runs as the `postgres` user, which initdb needs) or as that user.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
schema=${SCHEMA_SWIFT:-"$here/Sources/CareHubPostgres/PostgresSchema.swift"}
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
port=${PG_PORT:-$((20000 + RANDOM % 20000))}

for tool in initdb pg_ctl psql; do
    [[ -x "$pg_bin/$tool" || "$tool" == psql ]] || { echo "no $pg_bin/$tool" >&2; exit 1; }
done
psql_bin="$pg_bin/psql"
[[ -x "$psql_bin" ]] || psql_bin=$(command -v psql)

as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

work=$(mktemp -d /tmp/pg-schema-check.XXXXXX)
chmod 755 "$work"
data="$work/data"
sock="$work/sock"
mkdir -p "$data" "$sock" "$work/log" "$work/sql"
if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$data" "$sock" "$work/log"; fi
chmod 700 "$data"

started=0
cleanup() {
    status=$?
    if [[ $started -eq 1 ]]; then
        as_postgres "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

# The SQL lives once, in the Swift file: take each (name: "…", sql: """…""") entry apart as Swift
# would (the closing delimiter's indentation is removed from every line) and write one file per
# migration, numbered in order.
python3 - "$schema" "$work/sql" <<'PY'
import os, re, sys

source = open(sys.argv[1], encoding="utf-8").read()
out = sys.argv[2]
entry = re.compile(r'\(name:\s*"((?:[^"\\]|\\.)*)",\s*sql:\s*"""\n(.*?)\n([ \t]*)"""\s*\)', re.S)
escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0", "'": "'"}

def unescape(text, where):
    result, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            result.append(c); i += 1; continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt in escapes:
            result.append(escapes[nxt]); i += 2
        elif nxt == "\n":           # a line continuation
            i += 2
        else:
            sys.exit(f"{where}: unsupported escape \\{nxt} (interpolation is not allowed in schema SQL)")
    return "".join(result)

names = []
for n, m in enumerate(entry.finditer(source), 1):
    name, body, indent = m.group(1), m.group(2), m.group(3)
    lines = []
    for line in body.split("\n"):
        if line.strip() == "":
            lines.append("")
        elif line.startswith(indent):
            lines.append(line[len(indent):])
        else:
            sys.exit(f"{name}: a line is indented less than the closing delimiter: {line!r}")
    sql = unescape("\n".join(lines), name)
    names.append(name)
    with open(os.path.join(out, f"{n:03d}.sql"), "w", encoding="utf-8") as f:
        f.write(sql + "\n")
    with open(os.path.join(out, f"{n:03d}.name"), "w", encoding="utf-8") as f:
        f.write(name)

if not names:
    sys.exit("no migrations found in " + sys.argv[1])
if len(set(names)) != len(names):
    sys.exit("duplicate migration names")
declared = len(re.findall(r'\(name:\s*"', source))
if declared != len(names):
    sys.exit(f"{declared} migrations declared, {len(names)} parsed")
for earlier, later in zip(names, names[1:]):
    a, b = (int(re.match(r"v(\d+)-", x).group(1)) for x in (earlier, later))
    if b != a + 1:
        sys.exit(f"migrations out of order: {earlier}, {later}")
print(f"{len(names)} migrations: " + ", ".join(names))
PY
chmod -R a+rX "$work/sql"

as_postgres "$pg_bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
as_postgres "$pg_bin/pg_ctl" -D "$data" -l "$work/log/server.log" -w \
    -o "-p $port -k $sock -c listen_addresses='' -c fsync=off" start >/dev/null \
    || { cat "$work/log/server.log" >&2; exit 1; }
started=1

pg() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres "$@"; }

# Each database gets its default collation from a locale unlike C, so that a column missing
# COLLATE "C" would show in the comparison of byte order below.
migrate() {
    local db=$1
    pg -d postgres -c "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" 2>/dev/null \
        || pg -d postgres -c "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8'"
    echo "  $db: default collation $(pg -d "$db" -A -t -c "SELECT CASE datlocprovider WHEN 'i' THEN 'icu ' || daticulocale ELSE datcollate END FROM pg_database WHERE datname = current_database()")"
    for file in "$work"/sql/*.sql; do
        echo "  $db: $(cat "${file%.sql}.name")"
        pg -d "$db" --single-transaction -f "$file"
    done
}

# The schema as a canonical text: columns, constraints, indexes, triggers and functions.
describe() {
    pg -d "$1" -A -t <<'SQL'
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || COALESCE(' collate ' || collation_name, '')
       || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
       || COALESCE(' default ' || column_default, '')
       || CASE WHEN is_identity = 'YES' THEN ' identity ' || identity_generation ELSE '' END
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, ordinal_position;
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text, conname;
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname;
SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname;
SELECT 'function ' || p.proname || ' ' || md5(pg_get_functiondef(p.oid))
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY p.proname;
SELECT 'storage ' || attrelid::regclass || '.' || attname || ' ' || attstorage::text
FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r')
  AND attnum > 0 AND NOT attisdropped ORDER BY attrelid::regclass::text, attnum;
SQL
}

echo "applying to a fresh database:"
migrate carehub_a
echo
echo "tables:"
pg -d carehub_a -P pager=off -c "
    SELECT c.relname AS table, count(a.attnum) AS columns,
           (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
           (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c') AS checks,
           (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f') AS foreign_keys
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
    GROUP BY c.oid, c.relname ORDER BY c.relname"
echo "indexes:"
pg -d carehub_a -P pager=off -c "
    SELECT tablename AS table, indexname AS index, regexp_replace(indexdef, '^.* USING ', '') AS definition
    FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname"

describe carehub_a >"$work/a.schema"

# What the adapters rely on, beyond the statements having run.
pg -d carehub_a <<'SQL'
DO $$
DECLARE
    seq BIGINT;
    n BIGINT;
BEGIN
    -- Every text column compares bytes, as SQLite's BINARY collation does.
    SELECT count(*) INTO n FROM information_schema.columns
    WHERE table_schema = 'public' AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C';
    IF n <> 0 THEN RAISE EXCEPTION '% text columns without COLLATE "C"', n; END IF;
    -- No SQLite-era types left behind.
    SELECT count(*) INTO n FROM information_schema.columns
    WHERE table_schema = 'public' AND data_type IN ('integer', 'real', 'numeric', 'character varying');
    IF n <> 0 THEN RAISE EXCEPTION '% columns of an unintended type', n; END IF;

    INSERT INTO conversations (id, org, token_digest, started_at, offline) VALUES ('c_1', 'o', '\x01', 1.5, TRUE);
    INSERT INTO conversations (id, org, token_digest, started_at, offline) VALUES ('c_B', 'o', '\x02', 1.5, FALSE);
    INSERT INTO conversations (id, org, token_digest, started_at, offline) VALUES ('c_a', 'o', '\x03', 1.5, FALSE);
    -- Byte order: 'c_1' < 'c_B' < 'c_a' (a locale collation puts c_a before c_B).
    SELECT count(*) INTO n FROM (SELECT id, row_number() OVER (ORDER BY id) AS r FROM conversations) x
    WHERE (id, r) IN (('c_1', 1), ('c_B', 2), ('c_a', 3));
    IF n <> 3 THEN RAISE EXCEPTION 'text does not sort in byte order'; END IF;
    BEGIN
        INSERT INTO conversations (id, org, token_digest, started_at) VALUES ('c_2', 'o', '\x01', 2);
        RAISE EXCEPTION 'a token digest was accepted twice in one organisation';
    EXCEPTION WHEN unique_violation THEN NULL;
    END;

    -- The next sequence number, as every node takes it.
    UPDATE conversations SET last_seq = last_seq + 1 WHERE id = 'c_1' RETURNING last_seq INTO seq;
    INSERT INTO messages (conversation, seq, sender, at, body) VALUES ('c_1', seq, 'visitor', 2.25, convert_to('hi', 'UTF8'));
    UPDATE conversations SET last_seq = last_seq + 1 WHERE id = 'c_1' RETURNING last_seq INTO seq;
    IF seq <> 2 THEN RAISE EXCEPTION 'sequence counter gave %', seq; END IF;
    BEGIN
        INSERT INTO messages (conversation, seq, sender, at, body) VALUES ('c_1', 1, 'visitor', 3, '\x');
        RAISE EXCEPTION 'a sequence number was accepted twice';
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    BEGIN
        INSERT INTO messages (conversation, seq, sender, at, body) VALUES ('c_none', 1, 'visitor', 3, '\x');
        RAISE EXCEPTION 'a message without its conversation was accepted';
    EXCEPTION WHEN foreign_key_violation THEN NULL;
    END;

    -- Attachments keep insertion order in rowid.
    INSERT INTO attachments (id, org, conversation, sender, name, content_type, state, at) VALUES ('a_2', 'o', 'c_1', 'visitor', '\x', 'image/png', 'receiving', 5);
    INSERT INTO attachments (id, org, conversation, sender, name, content_type, state, at) VALUES ('a_1', 'o', 'c_1', 'visitor', '\x', 'image/png', 'receiving', 5);
    SELECT count(*) INTO n FROM (SELECT id, row_number() OVER (ORDER BY at, rowid) AS r FROM attachments) x WHERE (id, r) IN (('a_2', 1), ('a_1', 2));
    IF n <> 2 THEN RAISE EXCEPTION 'attachments do not keep insertion order'; END IF;
    BEGIN
        INSERT INTO attachments (id, org, conversation, sender, name, content_type, state, at) VALUES ('a_3', 'o', 'c_1', 'visitor', '\x', 'image/png', 'sent', 5);
        RAISE EXCEPTION 'an unknown attachment state was accepted';
    EXCEPTION WHEN check_violation THEN NULL;
    END;

    -- INSERT OR IGNORE, PostgreSQL's way.
    INSERT INTO data_keys (scope, org, kek_version, wrapped, created_at) VALUES ('conversation:c_1', 'o', 1, '\x0a', 1);
    INSERT INTO data_keys (scope, org, kek_version, wrapped, created_at) VALUES ('conversation:c_1', 'o', 1, '\x0b', 2) ON CONFLICT (scope) DO NOTHING;
    IF (SELECT wrapped FROM data_keys WHERE scope = 'conversation:c_1') <> '\x0a' THEN RAISE EXCEPTION 'ON CONFLICT DO NOTHING replaced a key'; END IF;

    INSERT INTO users (org, name, role, password_hash, created_at) VALUES ('o', 'ann', 'admin', 'h', 1);
    IF (SELECT octet_length(recovery_codes) FROM users WHERE name = 'ann') <> 0 OR (SELECT disabled FROM users WHERE name = 'ann') THEN
        RAISE EXCEPTION 'user defaults';
    END IF;

    -- The audit chain: the tip follows each row, and a row that skips it is refused.
    PERFORM last_id FROM audit_tip FOR UPDATE;
    INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (1, 1000, 'o', 'ann', '-', 'login', 'ann', '', '\xaa');
    INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (2, 1001, 'o', 'ann', '-', 'login', 'ann', '', '\xbb');
    IF (SELECT (last_id, hash) FROM audit_tip) IS DISTINCT FROM (2::BIGINT, '\xbb'::BYTEA) THEN RAISE EXCEPTION 'the tip did not follow'; END IF;
    BEGIN
        INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (4, 1002, 'o', 'ann', '-', 'login', 'ann', '', '\xcc');
        RAISE EXCEPTION 'an audit row off the tip was accepted';
    EXCEPTION WHEN serialization_failure THEN NULL;
    END;
    BEGIN
        INSERT INTO audit_tip DEFAULT VALUES;
        RAISE EXCEPTION 'a second tip row was accepted';
    EXCEPTION WHEN unique_violation THEN NULL;
    END;

    -- The change journal's id and its newest value after every row is forgotten.
    INSERT INTO changes (at, org, origin, kind, "user", reason) VALUES (1, 'o', 'n1', 'sessions_revoked', 'ann', 'disabled') RETURNING id INTO seq;
    DELETE FROM changes;
    IF COALESCE(pg_sequence_last_value(pg_get_serial_sequence('changes', 'id')), 0) <> seq THEN RAISE EXCEPTION 'newest change id lost'; END IF;

    -- Sessions.
    INSERT INTO sessions (token_digest, org, principal_kind, principal_user, principal_role, created_at, last_action_at, sso_provider, sso_issuer, sso_subject, sso_sid, second_factor_by_provider)
    VALUES (sha256('t1'), 'o', 'staff', 'ann', 'admin', 1, 1, 'okta', 'https://idp', 'sub-1', 'sid-1', TRUE);
    INSERT INTO sessions (token_digest, org, principal_kind, principal_conversation, created_at, last_action_at)
    VALUES (sha256('t2'), 'o', 'visitor', 'c_1', 1, 1);
    BEGIN
        INSERT INTO sessions (token_digest, org, principal_kind, principal_user, created_at, last_action_at) VALUES (sha256('t3'), 'o', 'staff', 'bob', 1, 1);
        RAISE EXCEPTION 'a staff session without a role was accepted';
    EXCEPTION WHEN check_violation THEN NULL;
    END;
    BEGIN
        INSERT INTO sessions (token_digest, org, principal_kind, principal_user, principal_role, created_at, last_action_at) VALUES ('\x01', 'o', 'staff', 'bob', 'staff', 1, 1);
        RAISE EXCEPTION 'a session keyed by something other than a digest was accepted';
    EXCEPTION WHEN check_violation THEN NULL;
    END;
    -- Roll the probe rows back: the schema is what gets compared.
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'probe-ok';
EXCEPTION WHEN raise_exception THEN
    IF SQLERRM <> 'probe-ok' THEN RAISE; END IF;
END;
$$;
SQL
echo "checks on the schema: passed"

# Two sessions at once on the audit tip: the second waits for the first's commit, then sees it.
pg -d carehub_a -c "BEGIN; SELECT last_id FROM audit_tip FOR UPDATE;
    INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (1, 1, 'o', 'a', '-', 'x', 't', '', '\x01');
    SELECT pg_sleep(1); COMMIT;" >/dev/null &
first=$!
sleep 0.3
second=$(pg -d carehub_a -A -t -c "BEGIN; SELECT last_id FROM audit_tip FOR UPDATE; COMMIT;" | head -1)
wait $first
[[ "$second" == 1 ]] || { echo "the second writer read tip $second, not 1" >&2; exit 1; }
echo "audit tip lock: the second writer waited and read the first's tip"

echo
echo "applying again to another fresh database:"
migrate carehub_b
describe carehub_b >"$work/b.schema"
if ! diff -u "$work/a.schema" "$work/b.schema"; then
    echo "the two databases' schemas differ" >&2
    exit 1
fi
echo "both databases have the same schema ($(wc -l <"$work/a.schema") lines of description)"
echo "pg-schema-check: ok"
