# shellcheck shell=bash
# Helpers shared by infra/install-system and infra/test-services. Sourced, never run.

QOR_INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QOR_REPO_DIR="$(cd "$QOR_INFRA_DIR/.." && pwd)"
export QOR_INFRA_DIR QOR_REPO_DIR

# apt lists younger than this are used as they are (a second `apt-get update` costs ~10 s).
QOR_APT_MAX_AGE_S=$((6 * 3600))

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Print the last lines of a log file to stderr (used right before die()).
show_log_tail() {
    local log="$1" n="${2:-30}"
    if [[ -s "$log" ]]; then
        printf -- '--- last %s lines of %s ---\n' "$n" "$log" >&2
        tail -n "$n" "$log" >&2
        printf -- '--- end of %s ---\n' "$log" >&2
    else
        printf '(log %s is empty or missing)\n' "$log" >&2
    fi
}

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }

# elapsed START -> seconds since START with one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -- "$@"
    else
        die "need root for: $* (run as root, or install sudo)"
    fi
}

# missing_debs PKG... -> prints the packages of the list that are not installed.
missing_debs() {
    local pkg status
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == installed ]] || printf '%s\n' "$pkg"
    done
}

# Touched after each `apt-get update` we run: apt gives the lists the server's dates, not ours.
QOR_APT_STAMP="${QOR_TOOLS_CACHE:-$HOME/.cache/qor-tools}/apt-update.stamp"

# apt_lists_fresh -> true when `apt-get update` ran less than QOR_APT_MAX_AGE_S ago (by our stamp,
# or by the package lists' own dates when those are newer).
apt_lists_fresh() {
    local newest
    find /var/lib/apt/lists -maxdepth 1 -type f -name '*Packages*' -print -quit 2>/dev/null |
        grep -q . || return 1
    newest="$({
        find /var/lib/apt/lists -maxdepth 1 -type f -name '*Release' -printf '%T@\n' 2>/dev/null
        if [[ -f "$QOR_APT_STAMP" ]]; then stat -c '%Y' "$QOR_APT_STAMP"; fi
    } | sort -n | tail -n 1)"
    [[ -n "$newest" ]] || return 1
    awk -v t="${newest%.*}" -v now="$(date +%s)" -v max="$QOR_APT_MAX_AGE_S" \
        'BEGIN { exit !(now - t < max) }'
}

# ensure_debs PKG... -> installs the Debian packages of the list that are missing.
# Returns at once (no apt at all) when every package is installed already.
ensure_debs() {
    local -a missing
    mapfile -t missing < <(missing_debs "$@")
    [[ ${#missing[@]} -gt 0 ]] || return 0
    say "installing Debian packages: ${missing[*]}"
    if apt_lists_fresh; then
        say "apt lists are younger than $((QOR_APT_MAX_AGE_S / 3600)) h: skipping apt-get update"
    else
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
            die "apt-get update failed"
        mkdir -p "$(dirname "$QOR_APT_STAMP")" && touch "$QOR_APT_STAMP"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
}
