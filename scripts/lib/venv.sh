# Sourced by the scripts: make sure .venv exists and holds the project as pyproject.toml says.
# Reinstalls only when pyproject.toml (or the extras asked for) changed since the last install.

ensure_venv() {
    local extras="$1"  # "" or "test"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Timebank needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "Creating the virtual environment in .venv ..." >&2
        "$python" -m venv .venv
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
    echo "Installing Timebank and its dependencies into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
    echo "$want" > "$stamp"
}
