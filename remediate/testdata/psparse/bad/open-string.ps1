# a bad string terminator
$s = "abc
RL-End 0
