"""Copy stdin to stdout and to a size-rotated log file (the container's `/app/logs/agent.log`).

Why not `tee`: the agent runs for months; a plain tee grows one file forever. Why not inside the agent: its
log goes to stderr as JSON lines (the container log); this keeps a copy in the logs volume for operators
who collect files, without changing the agent. A password printed on stdout (the GUI's first-run admin
password) is masked in the file copy: the file outlives the moment it was meant for. Signals are ignored: the agent ends first, then stdin hits
EOF and every last line is written.

    python logtee.py FILE [MAX_BYTES] [BACKUPS]      # defaults 10 MiB, 5 backups (FILE.1 ... FILE.5)
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

# password=x, "password": "x", Password=b'x' (asyncua), and the same inside a JSON-escaped message (\"password\")
_PASSWORD = re.compile(rb"(?i)(password(?:\\?[\"'])?\s*[:=]\s*(?:b?\\?[\"'])?)[^\s\"',\\]+")


def rotate(path: Path, backups: int) -> None:
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    if path.exists():
        path.replace(path.with_name(f"{path.name}.1"))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    max_bytes = int(argv[1]) if len(argv) > 1 else 10 << 20
    backups = int(argv[2]) if len(argv) > 2 else 5
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.open("ab")
    stdout = sys.stdout.buffer
    for line in sys.stdin.buffer:
        stdout.write(line)
        stdout.flush()
        if out.tell() + len(line) > max_bytes and out.tell() > 0:
            out.close()
            rotate(path, backups)
            out = path.open("ab")
        out.write(_PASSWORD.sub(rb"\1***", line))
        out.flush()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
