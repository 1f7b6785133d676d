# missing closing parenthesis
$b = @(1, 2
RL-End 0
