#!/usr/bin/env bash
# Runs every test of Ensemble: formatting and lints, the Rust unit and
# integration tests, and the interop tests that drive the real ZooKeeper
# clients (kazoo, zkCli.sh, the Java client, the C client) against the binary.
# Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in zookeeper zookeeper-bin libzookeeper-java libfaketime; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c "import kazoo, pytest" 2>/dev/null || {
    echo "== installing kazoo and pytest"
    python3 -m pip install -q kazoo pytest
}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p ensemble-consensus --features sim --all-targets -- -D warnings
echo "== cargo build --release"
cargo build --release --workspace
echo "== cargo test"
cargo test --release --workspace
echo "== simulation: three members on turmoil's simulated network and disk, 40 seeds (about three minutes)"
SIM_SEEDS=40 SIM_SECONDS=60 cargo test --release -p ensemble-consensus --features sim --test sim
echo "== interop and differential tests (real clients, Ensemble beside Apache ZooKeeper 3.8)"
ENSEMBLE_BIN="$PWD/target/release/ensemble" python3 -m pytest -q -p no:cacheprovider tests/interop tests/differential
echo "== quorum: 3 and 5 members of Ensemble and of ZooKeeper 3.8 (tests/cluster)"
# A run of its own: tests/interop imports its conftest by name.
ENSEMBLE_BIN="$PWD/target/release/ensemble" python3 -m pytest -q -p no:cacheprovider tests/cluster
echo "== chaos: workloads under kills, pauses, partitions and restarts, histories checked (tests/chaos)"
ENSEMBLE_BIN="$PWD/target/release/ensemble" python3 -m pytest -q -p no:cacheprovider tests/chaos
echo "== soak, short: mixed load and faults; memory, fds and leftovers checked (tests/soak)"
ENSEMBLE_BIN="$PWD/target/release/ensemble" python3 -m pytest -q -p no:cacheprovider tests/soak
