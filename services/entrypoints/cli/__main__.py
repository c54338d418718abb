"""`python -m services.entrypoints.cli ...`, as the `pipelines` script."""

from services.entrypoints.cli import app

app()
