# relaylock bash completion; load it with: source <(relaylock completion bash)
_relaylock_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
  local cands
  cands=$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  [[ "$cur" == "=" ]] && cur=""
  COMPREPLY=( $(compgen -W "${cands}" -- "${cur}") )
  return 0
}
complete -o bashdefault -o default -F _relaylock_complete relaylock
