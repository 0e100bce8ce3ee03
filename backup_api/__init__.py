"""HTTP trigger ``backups/{id?}``: start a backup and read how it is going, for Logic Apps and services.

POST a request (the queue's JSON) to get 202 and a ``Location``; GET the ``Location`` until it
answers 200 with the result. The function key (``authLevel: function``) is the boundary.
"""

from __future__ import annotations

import azure.functions as func

from shared.frontdoor_flow import handle_http
from shared.httpcall import HttpCall
from shared.runtime import services


def main(req: func.HttpRequest) -> func.HttpResponse:
    answer = handle_http(HttpCall.of(req), services())
    return func.HttpResponse(answer.text(), status_code=answer.status, headers=answer.all_headers(),
                             mimetype="application/json", charset="utf-8")
