"""`python -m rewardforge.cli`, as the `rewardforge` command."""

from rewardforge.cli.commands import main

main()
