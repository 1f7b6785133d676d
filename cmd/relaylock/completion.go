package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

const bashCompletion = `# relaylock bash completion; source it: source <(relaylock completion bash)
_relaylock_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  opts=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
  return 0
}
complete -o bashdefault -o default -F _relaylock_complete relaylock
`

const zshCompletion = `#compdef relaylock
# relaylock zsh completion; source it: source <(relaylock completion zsh)
_relaylock() {
  local -a opts
  opts=("${(@f)$(${words[1]} ${words[@]:1:$CURRENT-2} --generate-bash-completion 2>/dev/null)}")
  _describe 'values' opts
}
compdef _relaylock relaylock
`

const powershellCompletion = `# relaylock PowerShell completion; add to $PROFILE: relaylock completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName relaylock -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = $commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() }
  if ($wordToComplete) { $words = $words | Select-Object -SkipLast 1 }
  & relaylock @words --generate-bash-completion 2>$null | Where-Object { $_ -like "$wordToComplete*" } |
    ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
`

func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or powershell)",
		ArgsUsage: "bash|zsh|powershell",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(e.Stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(e.Stdout, zshCompletion)
			case "powershell", "pwsh":
				fmt.Fprint(e.Stdout, powershellCompletion)
			default:
				return usagef("completion: name a shell: bash, zsh or powershell")
			}
			return nil
		},
	}
}
