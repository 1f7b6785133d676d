# relaylock fish completion; load it with: relaylock completion fish | source
# (or save it as ~/.config/fish/completions/relaylock.fish)
complete -c relaylock -a '(relaylock __complete -- (commandline -opc)[2..-1] (commandline -ct))'
