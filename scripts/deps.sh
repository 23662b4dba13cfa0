# Sourced by scripts/test and scripts/example: install the Debian packages
# the project needs, only those missing, so a second run does nothing.
# PostgreSQL: server, client and libpq headers; scripts/pg-cluster starts a
# throwaway server from them for the tests (and installs only these).
PG_PACKAGES=(postgresql postgresql-client libpq-dev)
# openssl: the HTTPS test of tests/http makes a self-signed certificate;
# prometheus: its promtool checks the server's /metrics (tests/http).
# tzdata: the IANA zones cron schedules run in (lib/tz.c reads them).
PACKAGES=(meson ninja-build pkg-config gcc g++ libc6-dev python3
          libcjson-dev liblmdb-dev check libmicrohttpd-dev zlib1g-dev
          clang libclang-rt-14-dev valgrind curl openssl prometheus tzdata
          "${PG_PACKAGES[@]}")
# The dashboard's browser test (tests/dashboard) drives Debian's Chromium
# through playwright-core, pinned, in a cache of the project's outside the
# tree and shared by every build directory; never a browser of its own.
# scripts/test installs them (install_dashboard_deps), scripts/example not.
PLAYWRIGHT_CORE=playwright-core@1.65.1
NODE_CACHE=${TASKMGR_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskmgr/node}

# Install the Debian packages among "$@" that are missing.  DEPS_SUDO_FLAGS
# go to sudo when not root (-n: fail rather than ask for a password).
install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo ${DEPS_SUDO_FLAGS:-})
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Chromium, npm (Debian's, unless the machine has one with its Node.js)
# and playwright-core in NODE_CACHE.
install_dashboard_deps() {
	local pkgs=(chromium)
	command -v npm >/dev/null || pkgs+=(npm)
	install_packages "${pkgs[@]}" || return 1
	local want=${PLAYWRIGHT_CORE#playwright-core@}
	local have
	have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
		"$NODE_CACHE/node_modules/playwright-core/package.json" 2>/dev/null | head -n 1)
	[ "$have" = "$want" ] && return 0
	echo "installing: $PLAYWRIGHT_CORE into $NODE_CACHE"
	mkdir -p "$NODE_CACHE" &&
	npm install --prefix "$NODE_CACHE" --no-save --no-audit --no-fund --silent "$PLAYWRIGHT_CORE"
}

install_deps() {
	install_packages "${PACKAGES[@]}"
}

# meson setup, or reconfigure when the directory exists.
setup_build() {
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}
