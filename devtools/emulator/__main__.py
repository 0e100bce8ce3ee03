"""The Recovery Services and managed identity emulator (see devtools/emulator/README.md).

Starts both servers on 127.0.0.1, writes STATE_DIR/endpoints.json once they listen (and prints the
same JSON), and runs until SIGTERM or Ctrl-C. Exit status 2 for a bad config.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devtools.clihelp import parser as cli_parser

from .config import EmulatorConfig
from .emulator import Emulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("devtools.emulator", __doc__)
    parser.add_argument("--state-dir", required=True, type=Path, metavar="DIR",
                        help="where ca.pem and endpoints.json are written")
    parser.add_argument("--inventory", type=Path, metavar="FILE",
                        help="vaults and items (default: devtools/emulator/inventory.json)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="behaviour JSON (see devtools/emulator/README.md)")
    parser.add_argument("--time-scale", type=float, metavar="N", help="emulated seconds per real second (default: 1)")
    parser.add_argument("--arm-port", type=int, metavar="PORT", help="ARM https port (default: a free one)")
    parser.add_argument("--identity-port", type=int, metavar="PORT",
                        help="managed identity http port (default: a free one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        raw = json.loads(args.config.read_text(encoding="utf-8")) if args.config else {}
        overrides = {
            "inventory": str(args.inventory) if args.inventory else None,
            "time_scale": args.time_scale,
            "arm_port": args.arm_port,
            "identity_port": args.identity_port,
        }
        raw.update({key: value for key, value in overrides.items() if value is not None})
        emulator = Emulator(EmulatorConfig.from_dict(raw), args.state_dir)
    except (OSError, ValueError, KeyError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    try:
        print(json.dumps(emulator.endpoints), flush=True)
        while not stop.wait(0.2):
            continue
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
