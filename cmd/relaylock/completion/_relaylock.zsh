#compdef relaylock
# relaylock zsh completion; load it with: source <(relaylock completion zsh)
# (after compinit), or save it as _relaylock in a directory of $fpath.
_relaylock() {
  local -a cands
  cands=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  cands=(${cands:#})
  if (( ${#cands} )); then
    compadd -Q -- "${cands[@]}"
  else
    _files
  fi
}
if (( $+functions[compdef] )); then
  compdef _relaylock relaylock
fi
