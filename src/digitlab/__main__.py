"""`python -m digitlab`: the command line."""

from digitlab.cli import main

main()
