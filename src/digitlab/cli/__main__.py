"""`python -m digitlab.cli` (as `python -m digitlab`)."""

from digitlab.cli import main

main()
