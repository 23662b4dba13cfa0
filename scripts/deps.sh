# Sourced by scripts/test and scripts/example: install the Debian packages
# the project needs, only those missing, so a second run does nothing.
# PostgreSQL: server, client and libpq headers; scripts/pg-cluster starts a
# throwaway server from them for the tests (and installs only these).
PG_PACKAGES=(postgresql postgresql-client libpq-dev)
# openssl: the HTTPS test of tests/http makes a self-signed certificate;
# prometheus: its promtool checks the server's /metrics (tests/http).
PACKAGES=(meson ninja-build pkg-config gcc g++ libc6-dev python3
          libcjson-dev liblmdb-dev check libmicrohttpd-dev zlib1g-dev
          clang libclang-rt-14-dev valgrind curl openssl prometheus
          "${PG_PACKAGES[@]}")

install_deps() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
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
