"""CLI command implementations (registered on the typer app in :mod:`neuralannot.cli`)."""
