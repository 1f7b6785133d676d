# Shells for the completion tests (cmd/relaylock/completion_test.go): the
# printed bash, zsh and fish scripts are loaded in the real shells.
# Sourced by .ci/run after apt-get update.
apt-get install -y --no-install-recommends bash zsh fish >/dev/null
command -v bash zsh fish
