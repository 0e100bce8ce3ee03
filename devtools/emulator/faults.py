"""Fault injection: which request fails (scripted steps first, then random rates) and what the failure looks like."""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .config import FaultsConfig, FaultSpec, ScriptStep
from .errors import ArmError
from .wire import Response


@dataclass
class _Armed:
    step: ScriptStep
    pattern: re.Pattern[str]
    skip: int
    times: int

    def matches(self, method: str, target: str) -> bool:
        return self.step.method in ("*", method) and self.pattern.search(target) is not None


class FaultInjector:
    """Not thread-safe on its own: the emulator calls it under its state lock.

    The script is a queue: only its head is tried, and a step is consumed once it has faulted `times` requests,
    so a script reads as "the first POST dies, then the second status GET answers 503".
    """

    def __init__(self, config: FaultsConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._script: deque[_Armed] = deque()
        self.load_script(config.script)

    def configure(self, config: FaultsConfig, *, rearm_script: bool) -> None:
        if config.seed != self._config.seed:
            self._rng = random.Random(config.seed)
        self._config = config
        if rearm_script:
            self.load_script(config.script)

    def load_script(self, steps: tuple[ScriptStep, ...]) -> None:
        self._script = deque(_Armed(s, re.compile(s.path, re.IGNORECASE), s.skip, s.times) for s in steps)

    @property
    def script_remaining(self) -> int:
        return len(self._script)

    def pick(self, kind: str, method: str, target: str) -> FaultSpec | None:
        if self._script and self._script[0].matches(method, target):
            head = self._script[0]
            if head.skip > 0:
                head.skip -= 1
            else:
                head.times -= 1
                if head.times == 0:
                    self._script.popleft()
                return head.step
        for rule in self._config.rates:
            if rule.request in ("*", kind) and self._rng.random() < rule.probability:
                return rule
        return None

    def run(self, kind: str, method: str, target: str, respond: Callable[[], Response]) -> tuple[Response, str | None]:
        """Answer one request, faulted if a script step or a rate picks it; also says which fault, if any."""
        fault = self.pick(kind, method, target)
        if fault is None:
            return respond(), None
        return self.inject(fault, respond), fault.fault

    def inject(self, fault: FaultSpec, respond: Callable[[], Response]) -> Response:
        """The faulty answer; `respond` runs the real request, and is called only when the fault lets it take effect."""
        if fault.fault == "500":
            return ArmError(500, "InternalServerError", "Encountered internal server error (injected).").to_response()
        if fault.fault == "503":
            return ArmError(
                503, "ServiceUnavailable", "The service is temporarily unavailable (injected).",
                headers={"Retry-After": str(fault.retry_after)},
            ).to_response()
        if fault.fault == "429":
            return ArmError(
                429, "TooManyRequests", "Too many requests (injected).", headers={"Retry-After": str(fault.retry_after)}
            ).to_response()
        if fault.fault == "drop":
            if fault.when == "after":
                respond()
            return Response(0, drop=True)
        answer = respond()
        if fault.fault == "slow":
            answer.delay = min(fault.seconds, self._config.max_slow_seconds)
        elif fault.fault == "malformed":
            answer.status = 202 if answer.status == 202 else 200
            answer.body = answer.body[: len(answer.body) // 2] or b"<html><body>Bad Gateway</body></html>"
        elif fault.fault == "missing_headers":
            for name in ("Location", "Azure-AsyncOperation", "Retry-After"):
                answer.headers.pop(name, None)
        return answer
