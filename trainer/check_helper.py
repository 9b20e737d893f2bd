"""A helper process of the image check: checks the chunks of files it is sent.

`tledge.trainer.validation` starts one per extra core as `python -m
tledge.trainer.check_helper CONVERT_DIR`. One JSON line each way per chunk: in, the
files as [[path, size, mtime_ns], ...]; out, their verdicts as [[status, detail], ...]
in the same order. It stops at the end of its input.

A fresh interpreter rather than `multiprocessing`: spawning re-runs the caller's main
script, which a script without an `if __name__ == "__main__"` guard does not survive.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def main() -> None:
    """Check chunks from stdin until it closes, writing each chunk's verdicts to stdout."""
    # Ctrl-C reaches the whole process group; the calling process decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tledge.trainer.check_store import FileKey
    from tledge.trainer.validation import check_chunk

    convert_dir = Path(sys.argv[1])
    for line in sys.stdin:
        keys = [FileKey(*fields) for fields in json.loads(line)]
        checked = check_chunk(keys, convert_dir)
        sys.stdout.write(json.dumps([[verdict.status, verdict.detail] for _, verdict in checked]))
        sys.stdout.write("\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
