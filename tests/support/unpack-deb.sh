# Sourced by exim/install.sh and opensmtpd/install.sh: fetch one package's .deb and unpack it
# with `dpkg -x` (no install, no maintainer scripts: these MTAs conflict with Postfix as apt
# installs), and install its shared libraries as ordinary packages.
#   unpack_deb DEST PACKAGE LIB...
unpack_deb() {
    local dest="$1" pkg="$2" work
    shift 2
    if [ "$(id -u)" -ne 0 ]; then
        echo "unpack_deb $pkg: must run as root" >&2
        return 1
    fi
    work="$(mktemp -d)"
    chmod 755 "$work" # apt-get download runs as _apt
    fetch() {
        (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
                >"$work/apt.log" 2>&1
    }
    # Refresh the package lists only when the first try fails.
    if ! fetch "$@"; then
        if ! apt-get update -q >"$work/apt.log" 2>&1 || ! fetch "$@"; then
            tail -n 40 "$work/apt.log" >&2
            rm -rf "$work"
            return 1
        fi
    fi
    mkdir -p "$dest"
    dpkg -x "$work/$pkg"_*.deb "$dest"
    rm -rf "$work"
}

# A system user with its own group, no home, no shell (what a package's postinst would add).
system_user() {
    id "$1" >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$1"
}
