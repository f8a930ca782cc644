# Shared set-up of the scripts in this folder (sourced, not run): a virtual environment in .venv
# with the project installed, and configurable-http-proxy from npm. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install PKG...: install Debian packages that are missing (apt-get update first, once).
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    # one apt at a time on this machine (several set-ups may run at once)
    as_root flock /tmp/swan-apt.lock sh -c 'apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null' apt "${missing[@]}"
  fi
}

command -v python3 >/dev/null || apt_install python3 python3-venv
command -v npm >/dev/null || apt_install nodejs npm
if ! command -v configurable-http-proxy >/dev/null; then
  echo "==> installing configurable-http-proxy (npm)"
  as_root npm install -g --silent configurable-http-proxy >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
# pip only when something it installs from changed since the last install (a stamp in .venv
# holding a hash of the project's metadata, the JavaScript lock file and the extras installed):
# resolving the dependencies again takes pip a minute even when all of them are installed.
stamp_file=.venv/swan-install.stamp
wanted_extras="${SWAN_EXTRAS:-}"
stamp="$( (cat pyproject.toml js/package.json js/yarn.lock 2>/dev/null; .venv/bin/python -V) |
  sha256sum | cut -d' ' -f1)"
installed="$(cat "$stamp_file" 2>/dev/null || true)"
# the test extras include the plain install, so a test set-up serves ./scripts/up as well
if [ "$installed" = "$stamp $wanted_extras" ] ||
  { [ -z "$wanted_extras" ] && [ "${installed%% *}" = "$stamp" ]; }; then
  :
else
  echo "==> installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${wanted_extras}"
  echo "$stamp $wanted_extras" >"$stamp_file"
fi

# The labextension is built by that install, which skips the build when one exists: after a
# change in js/ it is built again here and copied where JupyterLab (and the browser tests)
# load it from.
js_stamp_file=.venv/swan-labextension.stamp
if [ -d js/src ]; then
  js_stamp="$(find js/src js/style js/package.json -type f | LC_ALL=C sort | xargs cat |
    sha256sum | cut -d' ' -f1)"
  installed_js="$(cat "$js_stamp_file" 2>/dev/null || true)"
  if [ "$installed_js" != "$js_stamp" ]; then
    if [ -n "$installed_js" ] || [ ! -f swan_share_ext/labextension/package.json ]; then
      echo "==> building the labextension"
      (cd js && PATH="$PWD/../.venv/bin:$PATH" jlpm build)
    fi
    target=.venv/share/jupyter/labextensions/@swan-suite/labextension
    rm -rf "$target"
    mkdir -p "$(dirname "$target")"
    cp -r swan_share_ext/labextension "$target"
    echo "$js_stamp" >"$js_stamp_file"
  fi
fi
