# Sourced by the scripts: make sure .venv exists and holds the project as pyproject.toml says.
# Reinstalls only when pyproject.toml (or the extras asked for) changed since the last install.
# Each step prints one short line; what the installers say goes to a log file, shown only if
# a step fails (pip and setuptools print screens of warnings that read like errors).

SETUP_LOG="$PWD/.timebank-setup.log"

# run_step "What is happening…" command args...: the command's output goes to the log.
run_step() {
    local what="$1"
    shift
    echo "$what" >&2
    {
        echo "== $(date -u +%FT%TZ) $what"
        echo "\$ $*"
    } >>"$SETUP_LOG"
    if ! "$@" >>"$SETUP_LOG" 2>&1; then
        echo "That step failed. What the installers said is in $SETUP_LOG" >&2
        tail -n 20 "$SETUP_LOG" | sed 's/^/    /' >&2
        exit 1
    fi
}

ensure_venv() {
    local extras="$1"  # "" or "test"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Timebank needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        run_step "Creating the virtual environment in .venv…" "$python" -m venv .venv
    fi
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    local stamp=".venv/.timebank-installed"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) $spec"
    # A test install also satisfies a plain one.
    if [ -f "$stamp" ] && { [ "$(cat "$stamp")" = "$want" ] || { [ -z "$extras" ] && grep -q "^$(sha256sum pyproject.toml | cut -d' ' -f1) " "$stamp"; }; }; then
        return 0
    fi
    run_step "Updating pip…" .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip
    run_step "Installing Timebank and what it needs (a minute or two the first time)…" \
        .venv/bin/python -m pip install --disable-pip-version-check -e "$spec"
    echo "$want" > "$stamp"
}
