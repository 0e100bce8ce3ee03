"""Queue trigger on BACKUP_REQUESTS_QUEUE: validate a backup request and trigger the backup.

Writes a result at once when the request is rejected or the trigger fails for good; otherwise
queues the first follow-up for poll_status.
"""

from __future__ import annotations

import azure.functions as func

from shared.runtime import services
from shared.workflow import Delivery, handle_request


def main(msg: func.QueueMessage, result: func.Out[str]) -> None:
    outcome = handle_request(msg.get_body(), Delivery.of(msg), services())
    if outcome is not None:
        result.set(outcome)

