# Sourced by tests/run.sh and tests/demo.sh before their first build step: checks every tool they
# need and, as root on Debian, installs the missing packages with one apt-get; anywhere else it
# stops at once with one message naming everything missing and how to get it.
#
#   source tests/prerequisites.sh
#   prerequisites demo     # the demo's needs
#   prerequisites tests    # the demo's needs and the test suite's
#
# MCP_PREREQUISITES_NO_INSTALL=1 reports what is missing without installing it.

# TOOL:DEBIAN_PACKAGE pairs. The environment runs ip, unshare and nsenter (pod namespaces), nft
# and conntrack (kube-proxy in nftables mode); the demo calls MCP with curl.
_prereq_demo_packages=(ip:iproute2 unshare:util-linux nsenter:util-linux curl:curl nft:nftables
  conntrack:conntrack)
# The static build of mcp-server needs a C compiler for musl (its allocator is C) and readelf;
# Ory Hydra (tests/controlplane/build.sh hydra) is built with cgo for its SQLite driver.
_prereq_test_packages=(musl-gcc:musl-tools readelf:binutils gcc:gcc)

_prereq_fail() {
  printf '%s\n' "$@" >&2
  exit 1
}

prerequisites() {
  local purpose=$1 pair tool
  local -a packages=("${_prereq_demo_packages[@]}") toolchains=(go cargo) missing_packages=() \
    missing_toolchains=() missing_rust=()
  if [ "$purpose" = tests ]; then
    packages+=("${_prereq_test_packages[@]}")
    toolchains+=(rustup python3 node npm)
  fi
  [ "$(id -u)" = 0 ] ||
    _prereq_fail "this must run as root: the test environment creates network namespaces"

  for tool in "${toolchains[@]}"; do
    command -v "$tool" >/dev/null || missing_toolchains+=("$tool")
  done
  local -a missing_tools=()
  for pair in "${packages[@]}"; do
    command -v "${pair%%:*}" >/dev/null && continue
    missing_packages+=("${pair#*:}")
    missing_tools+=("${pair%%:*} (${pair#*:})")
  done
  if [ "$purpose" = tests ] && command -v rustup >/dev/null; then
    local installed
    installed=$(rustup component list --installed 2>/dev/null)
    grep -q '^rustfmt' <<<"$installed" || missing_rust+=(rustfmt)
    grep -q '^clippy' <<<"$installed" || missing_rust+=(clippy)
    rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
      missing_rust+=(target:x86_64-unknown-linux-musl)
  fi
  # Deduplicate (util-linux provides two tools).
  mapfile -t missing_packages < <(printf '%s\n' "${missing_packages[@]}" | sort -u | sed '/^$/d')

  if [ ${#missing_toolchains[@]} -gt 0 ]; then
    _prereq_fail "missing toolchains: ${missing_toolchains[*]}" \
      "  install Go (go.dev/doc/install) and Rust with rustup (rustup.rs); the tests also need" \
      "  Python 3 and Node.js with npm. Then run this again.${missing_tools[*]:+ Also missing:}" \
      "${missing_tools[*]:+  ${missing_tools[*]}}"
  fi
  if [ ${#missing_packages[@]} -gt 0 ]; then
    if [ -z "${MCP_PREREQUISITES_NO_INSTALL:-}" ] && command -v apt-get >/dev/null; then
      printf 'installing from Debian: %s\n' "${missing_packages[*]}" >&2
      apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null ||
        _prereq_fail "apt-get could not install: ${missing_packages[*]}"
    else
      _prereq_fail "missing tools (Debian package in brackets): ${missing_tools[*]}" \
        "  on Debian or Ubuntu, as root: apt-get install ${missing_packages[*]}"
    fi
  fi
  if [ ${#missing_rust[@]} -gt 0 ]; then
    if [ -n "${MCP_PREREQUISITES_NO_INSTALL:-}" ]; then
      _prereq_fail "missing Rust parts: ${missing_rust[*]}" \
        "  rustup component add rustfmt clippy; rustup target add x86_64-unknown-linux-musl"
    fi
    local part
    for part in "${missing_rust[@]}"; do
      case $part in
        target:*) rustup target add "${part#target:}" >/dev/null 2>&1 ;;
        *) rustup component add "$part" >/dev/null 2>&1 ;;
      esac || _prereq_fail "rustup could not install $part"
    done
  fi
  return 0
}
