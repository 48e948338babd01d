"""``python -m qor`` runs the CLI."""

from qor.cli import main

main()
