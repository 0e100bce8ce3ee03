"""A local emulator of the Azure endpoints the app calls: Recovery Services backup over ARM, and managed identity.

Run it with `python -m devtools.emulator --state-dir DIR`, or in-process:
`with Emulator(EmulatorConfig(time_scale=600), tmp_dir) as emu: emu.endpoints`. See README.md.
"""

from __future__ import annotations

from .config import Behaviour, EmulatorConfig
from .emulator import Emulator

__all__ = ["Behaviour", "Emulator", "EmulatorConfig"]
