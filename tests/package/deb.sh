#!/usr/bin/env bash
# The two host installs of docs/install.md, checked as an admin would use them:
# - from source: `cargo install --locked --path .` (into a scratch root), then `--version`;
# - the Debian package: built by cargo-deb from that same release build, installed with
#   `apt-get install ./mxtrace_*.deb`, then `mxtrace demo`, `man mxtrace`, the bash completion,
#   and a clean removal.
# Usage: tests/package/deb.sh                      (root) build, install, check, remove
#        tests/package/deb.sh --build-only         build target/debian/mxtrace_*.deb and stop
#        tests/package/deb.sh --binary PATH        package this release binary (CI passes the
#                                                  one docker/test.sh built) instead of a second
#                                                  release build; `cargo install --path .` is
#                                                  then checked with --debug, reusing the tests'
#                                                  build
# Needs cargo-deb (installed here if missing) and man-db.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

log() { printf '== deb: %s\n' "$*"; }
fail() { printf 'tests/package/deb.sh: FAIL: %s\n' "$*" >&2; exit 1; }
build_only=0
binary=
while [ $# -gt 0 ]; do
    case "$1" in
    --build-only) build_only=1 ;;
    --binary) binary=${2:?--binary needs a path}; shift ;;
    *) fail "usage: tests/package/deb.sh [--build-only] [--binary PATH]" ;;
    esac
    shift
done
if [ "$build_only" = 0 ]; then
    [ "$(id -u)" = 0 ] || fail "run as root (it installs and removes the package)"
    if dpkg -s mxtrace >/dev/null 2>&1; then fail "mxtrace is already installed: remove it first"; fi
fi

scratch=$(mktemp -d)
installed=0
cleanup() {
    [ "$installed" = 1 ] && apt-get remove -y mxtrace >/dev/null 2>&1
    rm -rf "$scratch"
}
trap cleanup EXIT

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0

if [ -z "$binary" ]; then
    log "from source: cargo install --locked --path . (release build, reused for the package)"
    cargo install --locked --path . --root "$scratch/root" --target-dir target --quiet
else
    log "from source: cargo install --debug --locked --path . (the package uses $binary)"
    cargo install --debug --locked --path . --root "$scratch/root" --target-dir target --quiet
fi
"$scratch/root/bin/mxtrace" --version | grep -q '^mxtrace ' || fail "installed binary --version"
if [ -n "$binary" ]; then
    [ "$("$binary" --version)" = "$("$scratch/root/bin/mxtrace" --version)" ] \
        || fail "$binary is not this version of mxtrace"
    mkdir -p target/release
    [ "$binary" -ef target/release/mxtrace ] || install -m 755 "$binary" target/release/mxtrace
    cp -f "$binary" "$scratch/root/bin/mxtrace"
fi

log "the man page and completions, generated from the command definitions"
assets=target/package-assets
mkdir -p "$assets"
"$scratch/root/bin/mxtrace" man | gzip -9n >"$assets/mxtrace.1.gz"
"$scratch/root/bin/mxtrace" completions bash >"$assets/mxtrace.bash"
"$scratch/root/bin/mxtrace" completions zsh >"$assets/_mxtrace"
"$scratch/root/bin/mxtrace" completions fish >"$assets/mxtrace.fish"

log "cargo deb"
rm -f target/debian/mxtrace_*.deb
cargo deb --no-build --locked >/dev/null
deb=$(ls target/debian/mxtrace_*.deb)
dpkg-deb --contents "$deb" >"$scratch/contents"
for f in /usr/bin/mxtrace /usr/share/man/man1/mxtrace.1.gz \
    /usr/share/bash-completion/completions/mxtrace /usr/share/doc/mxtrace/README.md /usr/share/doc/mxtrace/docs/probe.md \
    /usr/share/doc/mxtrace/scenarios/a-inbound-eop.toml /usr/share/doc/mxtrace/copyright \
    /lib/systemd/system/mxtrace-exporter.service \
    /usr/share/doc/mxtrace/examples/mxtrace-exporter.toml; do
    grep -q " \.$f\$" "$scratch/contents" || fail "$f is not in the package"
done
if [ "$build_only" = 1 ]; then
    log "built $deb"
    exit 0
fi

log "apt-get install ./$(basename "$deb")"
apt-get install -y "./$deb" >"$scratch/apt.log" 2>&1 || { cat "$scratch/apt.log"; fail install; }
installed=1
[ "$(command -v mxtrace)" = /usr/bin/mxtrace ] || fail "mxtrace is not /usr/bin/mxtrace"
mxtrace demo >"$scratch/demo.log" 2>&1 || { tail -n 30 "$scratch/demo.log"; fail "mxtrace demo"; }
MANPAGER=cat MANWIDTH=100 man mxtrace 2>/dev/null | grep -q 'mxtrace' || fail "man mxtrace"
# The completion script as bash-completion loads it: `mxtrace pro<TAB>` offers probe.
words=$(bash -c 'source /usr/share/bash-completion/completions/mxtrace
    COMP_WORDS=(mxtrace pro); COMP_CWORD=1; COMP_LINE="mxtrace pro"; COMP_POINT=11
    _mxtrace mxtrace pro mxtrace; printf "%s\n" "${COMPREPLY[@]}"')
grep -qx probe <<<"$words" || fail "bash completion of 'mxtrace pro' gave: $words"
# The exporter's unit is installed (not enabled) and names the installed binary.
grep -q '^ExecStart=/usr/bin/mxtrace serve ' /lib/systemd/system/mxtrace-exporter.service \
    || fail "the mxtrace-exporter systemd unit is not installed"

log "apt-get remove"
apt-get remove -y mxtrace >/dev/null 2>&1 || fail remove
installed=0
[ ! -e /usr/bin/mxtrace ] || fail "/usr/bin/mxtrace is still there after removal"
[ ! -e /usr/share/man/man1/mxtrace.1.gz ] || fail "the man page is still there after removal"
log "all checks passed"
