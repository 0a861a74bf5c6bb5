"""``python -m nhd_bridge`` runs the command line."""

from nhd_bridge.cli import run

run()
