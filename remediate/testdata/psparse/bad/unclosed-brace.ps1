# unclosed script block
if ($a -eq 1) {
    Write-Output "x"
