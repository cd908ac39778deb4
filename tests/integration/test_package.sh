#!/usr/bin/env bash
# test_package: the Debian package, end to end, on this machine.
#
# Builds the checkout in a build directory of its own (RelWithDebInfo,
# prefix /usr, no sanitizers, no tests: the suite's own build may link ASan),
# makes the .debs with cpack, installs them with dpkg -i, checks the layout,
# the service's user, the unit (systemd-analyze verify) and the -dev files,
# then runs the installed binary as the service's user with the installed
# configuration, changing only the database path and the ports, and serves a
# write and a Watch (curl and the installed `tuplecast watch`).  At the end
# the packages are purged and what their scripts made is removed, so that
# the machine is left as it was.  Needs root, as dpkg does; never skips.
#
# Usage: test_package.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
deadline_s=60

fail() {
  echo "test_package: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i); the suite runs as root"

# One package test at a time on this machine (two build trees may run it).
exec 9>/tmp/tuplecast-package-test.lock
flock -w 900 9 || fail "another package test holds /tmp/tuplecast-package-test.lock"
for p in tuplecast tuplecast-dev; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed'; then
    fail "package $p is installed already; this test will not replace it"
  fi
done
had_user=0
getent passwd tuplecast >/dev/null && had_user=1
had_state=0
[ -e /var/lib/tuplecast ] && had_state=1

tmp=$(mktemp -d /tmp/tuplecast-package.XXXXXX)
chmod 755 "$tmp"
server_pid=
watch_pid=
curl_pid=
cleanup() {
  set +e
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
  [ -n "$curl_pid" ] && kill "$curl_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  dpkg -P tuplecast tuplecast-dev >/dev/null 2>&1
  if [ "$had_user" = 0 ] && getent passwd tuplecast >/dev/null; then
    userdel tuplecast 2>/dev/null
    getent group tuplecast >/dev/null && groupdel tuplecast 2>/dev/null
  fi
  [ "$had_state" = 0 ] && rm -rf /var/lib/tuplecast
  rm -rf "$tmp"
}
trap cleanup EXIT

# Waits until file holds the extended regex, up to the deadline.
wait_for() {
  local file=$1 pattern=$2 end=$((SECONDS + deadline_s))
  until grep -Eq -- "$pattern" "$file" 2>/dev/null; do
    [ $SECONDS -lt $end ] || {
      cat "$file" >&2
      fail "no \"$pattern\" in $file within ${deadline_s}s"
    }
    sleep 0.1
  done
}

# Commands run as the service's user with setpriv, which execs them: $! is
# the command's own pid, and signals reach it.
as_user=(setpriv --reuid=tuplecast --regid=tuplecast --init-groups --)

echo "== build and package ($build)"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DTC_SANITIZE=OFF -DTC_BUILD_TESTS=OFF -DTC_BUILD_BENCH=OFF >/dev/null
cmake --build "$build"
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/tuplecast_*_*.deb)
dev=$(ls "$build"/tuplecast-dev_*_*.deb)
dpkg-deb -f "$deb" Depends | grep -q 'libgrpc' || fail "Depends lacks the runtime libraries"

echo "== install"
dpkg -i "$deb" "$dev"
for f in /usr/bin/tuplecast /usr/lib/tuplecast/backends/sqlite.so \
  /usr/lib/tuplecast/backends/postgres.so /etc/tuplecast/config.yaml \
  /usr/lib/systemd/system/tuplecast.service /usr/share/doc/tuplecast/README.md \
  /usr/share/doc/tuplecast/docs/operations.md /usr/include/tuplecast/backend.h; do
  [ -e "$f" ] || fail "$f not installed"
done
ldd /usr/bin/tuplecast | grep -q libasan && fail "the packaged binary links ASan"
dpkg-query -W -f='${Conffiles}\n' tuplecast | grep -q '/etc/tuplecast/config.yaml' ||
  fail "/etc/tuplecast/config.yaml is not a conffile"
getent passwd tuplecast >/dev/null || fail "postinst made no tuplecast user"
[ "$(stat -c %U:%a /var/lib/tuplecast)" = tuplecast:750 ] || fail "/var/lib/tuplecast: $(stat -c %U:%a /var/lib/tuplecast)"
# The configuration holds secrets once keys or a database password are set.
conf_mode=$(stat -c %U:%G:%a /etc/tuplecast/config.yaml)
[ "$conf_mode" = root:tuplecast:640 ] || fail "/etc/tuplecast/config.yaml: $conf_mode"
systemd-analyze verify /usr/lib/systemd/system/tuplecast.service ||
  fail "systemd-analyze verify rejects the unit"
grep -q '^ExecStart=/usr/bin/tuplecast serve -c /etc/tuplecast/config.yaml$' \
  /usr/lib/systemd/system/tuplecast.service || fail "the unit's ExecStart"
pkg-config --exists tuplecast-support || fail "pkg-config does not find tuplecast-support"
# The plugins are found relative to the installed binary, not the build tree.
/usr/bin/tuplecast serve --help | grep -q 'in /usr/lib/tuplecast/backends: postgres, sqlite' ||
  fail "serve --help does not list /usr/lib/tuplecast/backends"
/usr/bin/tuplecast config -c /etc/tuplecast/config.yaml >"$tmp/config.json"
grep -q '"database.uri": "/var/lib/tuplecast/tuplecast.db"' "$tmp/config.json" ||
  fail "tuplecast config: $(cat "$tmp/config.json")"

echo "== serve with the installed configuration"
db="$tmp/state"
install -d -o tuplecast -g tuplecast "$db"
"${as_user[@]}" /usr/bin/tuplecast serve -c /etc/tuplecast/config.yaml \
  --database-uri "$db/tuplecast.db" --http-port 0 --grpc-port 0 2>"$tmp/server.log" &
server_pid=$!
wait_for "$tmp/server.log" 'grpc listening on port [0-9]+'
port=$(grep -Eo 'http listening on port [0-9]+' "$tmp/server.log" | grep -Eo '[0-9]+$')
grep -q '"level":"INFO"' "$tmp/server.log" || fail "the installed config's JSON logs"
base="http://127.0.0.1:$port/v1/tenants/t1"

"${as_user[@]}" /usr/bin/tuplecast watch --tenant t1 --server "127.0.0.1:$port" \
  >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
wait_for "$tmp/watch.err" 'watching tenant t1'
curl -sS --noproxy '*' -f -X POST "$base/schemas/write" \
  -d '{"schema":"entity user {}\nentity doc {\n  relation owner @user\n}"}' >/dev/null
token=$(curl -sS --noproxy '*' -f -X POST "$base/data/write" \
  -d '{"metadata":{},"tuples":[{"entity":{"type":"doc","id":"1"},"relation":"owner","subject":{"type":"user","id":"alice"}}]}' |
  jq -r .snap_token)
[ -n "$token" ] && [ "$token" != null ] || fail "the write returned no snap token"
wait_for "$tmp/watch.out" '^\+ doc:1#owner@user:alice$'
kill -INT "$watch_pid"
wait "$watch_pid" || fail "tuplecast watch exited $? on SIGINT"
watch_pid=
grep -qx "tuplecast watch: resume with --from $token" "$tmp/watch.err" ||
  fail "watch printed no resume token: $(cat "$tmp/watch.err")"
[ "$(wc -l <"$tmp/watch.out")" = 1 ] || fail "watch printed: $(cat "$tmp/watch.out")"

# A change over the NDJSON route with curl: the first line, a checkpoint,
# says the watch is live.
curl -sS --noproxy '*' -N --max-time 30 -X POST "$base/watch" \
  -d '{"snap_token":"","checkpoint_interval_seconds":3600}' >"$tmp/ndjson" 2>/dev/null &
curl_pid=$!
wait_for "$tmp/ndjson" '"data_changes":\[\]'
curl -sS --noproxy '*' -f -X POST "$base/data/write" \
  -d '{"metadata":{},"tuples":[{"entity":{"type":"doc","id":"2"},"relation":"owner","subject":{"type":"user","id":"bob"}}]}' >/dev/null
wait_for "$tmp/ndjson" '"id":"bob"'
kill "$curl_pid" 2>/dev/null || true
curl_pid=

kill -TERM "$server_pid"
wait "$server_pid" || fail "the installed server exited $? on SIGTERM"
server_pid=
[ -s "$db/tuplecast.db" ] || fail "no database at the path given"

echo "== remove"
dpkg -P tuplecast tuplecast-dev
for f in /usr/bin/tuplecast /usr/lib/tuplecast /etc/tuplecast /usr/lib/systemd/system/tuplecast.service \
  /usr/share/doc/tuplecast /usr/include/tuplecast; do
  [ ! -e "$f" ] || fail "$f left after dpkg -P"
done
echo "test_package: OK"
