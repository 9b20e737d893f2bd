"""`tledge capture`: take training photos with the device's camera, by button or timer."""

from __future__ import annotations

import click


@click.command()
@click.argument("data", type=click.Path(file_okay=False))
@click.option(
    "--source",
    default="0",
    show_default=True,
    help="Camera index, /dev/videoN, picamera2, rtsp:// URL (or a video file).",
)
@click.option("--serve", metavar="[HOST:]PORT", help="Capture page, e.g. 8080 or 0.0.0.0:8080.")
@click.option(
    "--token",
    envvar="TLEDGE_TOKEN",
    metavar="SECRET|auto",
    help="Page access token, as for `tledge edge --serve` (needed beyond this machine).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Host name the page may be opened by (besides IPs, localhost and this machine).",
)
@click.option(
    "--classes", metavar="A,B,...", default="", help="Buttons to show before they have photos."
)
@click.option("--label", help="Headless: save every photo as this class.")
@click.option("--every", default="2s", show_default=True, help="Headless: time between photos.")
@click.option("--count", type=click.IntRange(min=1), help="Headless: stop after N photos.")
def capture(
    data: str,
    source: str,
    serve: str | None,
    token: str | None,
    allow_hosts: tuple[str, ...],
    classes: str,
    label: str | None,
    every: str,
    count: int | None,
) -> None:
    """Save camera frames into DATA/<class>/ for training (class-per-folder).

    With --serve, a page shows the stream and one button per class (keys 1-9, a field
    for a new class). With --label, a photo is taken every --every until --count.
    Stop with Ctrl-C.

    \b
    Examples:
      tledge capture photos/ --source picamera2 --serve 0.0.0.0:8080 --token auto \
          --classes pizza,salad
      tledge capture photos/ --source 0 --label pizza --every 2s --count 50
    """
    from tledge.edge.capture import CaptureOptions, PhotoStore, parse_interval, run_capture
    from tledge.edge.source_spec import open_source
    from tledge.edge.web_access import ServeOptions, WebAccess

    serve_options = None
    if serve is not None:
        token = WebAccess.new_token() if token == "auto" else token
        serve_options = ServeOptions(
            serve, token=token, offers_insecure_no_token=False, allow_hosts=allow_hosts
        )
        serve_options.check()
    names = tuple(name for name in classes.split(",") if name.strip())
    store = PhotoStore(data, names)
    options = CaptureOptions(
        serve=serve_options, label=label, every_s=parse_interval(every), count=count
    )
    saved = run_capture(
        open_source(source),
        store,
        options,
        on_serve=lambda url: click.echo(
            f"Capture page at {url}" + (f"?token={serve_options.token}" if token else ""), err=True
        ),
        on_photo=lambda path: click.echo(f"saved {path}", err=True) if label else None,
    )
    counts = ", ".join(f"{name} {n}" for name, n in store.counts().items())
    click.echo(f"{saved} photos saved in {data} ({counts})")
