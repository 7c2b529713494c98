# Sourced by the benchmark scripts under benches/ (`run.sh` each): their messages, their usage
# (the script's opening comment), and the pinned Python venv their baselines run in.

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

die() {
    echo "run.sh: error: $*" >&2
    exit 1
}

say() {
    echo "run.sh: $*" >&2
}

#
#   ensure_venv VENV REQUIREMENTS [NOTE]
#
# Creates VENV if it is missing and installs REQUIREMENTS into it, again whenever that file
# changes (its sha256 is kept in the venv). NOTE is added to the message while installing.
ensure_venv() {
    local venv="$1" req="$2" note="${3:-}"
    command -v python3 >/dev/null || die "python3 not found; it is needed to create the venv"
    local stamp="$venv/.tailor-requirements.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ ! -x "$venv/bin/python" ]]; then
        say "creating venv $venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        say "installing $req into $venv${note:+ ($note)}"
        rm -f "$stamp"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
            || die "pip install -r $req failed; see the pip output above"
        echo "$want" > "$stamp"
    fi
}
