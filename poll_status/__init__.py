"""Queue trigger on BACKUP_STATUS_QUEUE: take one look at a running backup.

Either queues the next look with a delay (never sleeping here) or writes the final result.
"""

from __future__ import annotations

import azure.functions as func

from shared.runtime import services
from shared.workflow import Delivery, handle_follow_up


def main(msg: func.QueueMessage, result: func.Out[str]) -> None:
    outcome = handle_follow_up(msg.get_body(), Delivery.of(msg), services())
    if outcome is not None:
        result.set(outcome)
