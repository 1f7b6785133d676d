# relaylock PowerShell completion; add to $PROFILE: relaylock completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName relaylock -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() })
  if ($wordToComplete) { $words = @($words | Select-Object -SkipLast 1) }
  & relaylock __complete "--cur=$wordToComplete" -- @words 2>$null | Where-Object { $_ -like "$wordToComplete*" } |
    ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
