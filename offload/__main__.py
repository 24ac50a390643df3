"""`python -m offload` runs the command-line interface."""

from offload.cli import main

main()
