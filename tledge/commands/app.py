"""`tledge app`: the Streamlit review app (needs the `[app]` extra: streamlit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click


@click.command()
@click.option("--runs", default="runs", show_default=True, help="Folder of run folders.")
@click.option(
    "--collected",
    default="collected",
    show_default=True,
    help="Frames kept by `tledge edge --collect` (copied from the device).",
)
@click.option(
    "--data",
    default="new_photos",
    show_default=True,
    help="Dataset (class folders) that reviewed frames are filed into.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def app(runs: str, collected: str, data: str, port: int, host: str) -> None:
    """Browse runs, try photos on a model, review collected frames (Streamlit).

    \b
    Example:
      tledge app --runs runs --collected pi_collected --data new_photos
    """
    import importlib.util

    from tledge.core.errors import TledgeError

    if importlib.util.find_spec("streamlit") is None:
        raise TledgeError("tledge app needs Streamlit: pip install 'tledge[app]'")
    script = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
    env = {
        **os.environ,
        "TLEDGE_APP_RUNS": str(Path(runs).resolve()),
        "TLEDGE_APP_COLLECTED": str(Path(collected).resolve()),
        "TLEDGE_APP_DATA": str(Path(data).resolve()),
    }
    command = [sys.executable, "-m", "streamlit", "run", str(script)]
    command += ["--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", host, "--browser.gatherUsageStats", "false"]
    click.echo(f"tledge app at http://{host}:{port}/", err=True)
    raise SystemExit(subprocess.call(command, env=env))
