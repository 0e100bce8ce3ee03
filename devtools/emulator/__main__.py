"""Command line: start the emulator, write DIR/endpoints.json when ready, run until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .config import EmulatorConfig
from .emulator import Emulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator", description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path, help="where ca.pem and endpoints.json are written")
    parser.add_argument("--inventory", type=Path, help="inventory JSON (default: the one shipped beside the code)")
    parser.add_argument("--config", type=Path, help="behaviour JSON (see README.md)")
    parser.add_argument("--time-scale", type=float, help="emulated seconds per real second")
    parser.add_argument("--arm-port", type=int, help="ARM https port (0: any free port)")
    parser.add_argument("--identity-port", type=int, help="managed identity http port (0: any free port)")
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
