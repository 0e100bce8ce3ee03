"""The ARM front door and the Recovery Services handlers: authentication, throttling, api-version, then the call."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .backups import BackupState, Job, Operation
from .clock import EmulatedClock
from .config import EmulatorConfig
from .errors import ArmError, bad_request, not_found
from .identity import TokenStore
from .inventory import Inventory, Item, Vault
from .listing import filter_time, matches, page, parse_filter
from .render import job as render_job
from .render import operation_status, protected_item
from .routes import Route, is_under_provider
from .stats import Stats, token_fingerprint
from .targets import COMPUTE_API_VERSIONS, backup_status, vm_get
from .throttle import Throttle
from .validation import parse_backup_request
from .wire import Request, Response, json_response

# The api-version the service writes into the operation URLs it hands out, whatever the caller used.
OPERATION_API_VERSION = "2016-12-01"
JOB_FILTERS = ("operation", "status", "backupManagementType", "startTime", "endTime", "jobId")
ITEM_FILTERS = ("backupManagementType", "itemType", "policyName", "containerName", "name", "friendlyName")


@dataclass(frozen=True)
class RequestIds:
    request_id: str
    correlation_id: str
    client_request_id: str | None

    @classmethod
    def of(cls, request: Request) -> RequestIds:
        correlation = request.header("x-ms-correlation-request-id") or str(uuid.uuid4())
        return cls(str(uuid.uuid4()), correlation, request.header("x-ms-client-request-id"))

    def headers(self) -> dict[str, str]:
        headers = {"x-ms-request-id": self.request_id, "x-ms-correlation-request-id": self.correlation_id}
        if self.client_request_id:
            headers["x-ms-client-request-id"] = self.client_request_id
        return headers


def bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _unauthorized(code: str, message: str) -> ArmError:
    challenge = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", '
        f'error="invalid_token", error_description="{message}"'
    )
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


class ArmService:
    """Not thread-safe on its own: the emulator calls it under its state lock."""

    def __init__(
        self,
        config: EmulatorConfig,
        inventory: Inventory,
        state: BackupState,
        clock: EmulatedClock,
        tokens: TokenStore,
        throttle: Throttle,
        stats: Stats,
    ) -> None:
        self.config = config
        self.base_url = ""
        self._inventory = inventory
        self._state = state
        self._clock = clock
        self._tokens = tokens
        self._throttle = throttle
        self._stats = stats
        # Items look as if their policy backed them up the day before the emulator started.
        self._scheduled_backup = clock.caller_now() - timedelta(days=1)
        self._handlers: dict[str, Callable[[Request, Route, RequestIds], Response]] = {
            "trigger": self._trigger,
            "operation_status": self._operation_status,
            "operation_results": self._operation_results,
            "job_get": self._job_get,
            "job_list": self._job_list,
            "items_list": self._items_list,
            "backup_status": lambda request, route, ids: backup_status(self._inventory, request, route),
            "vm_get": lambda request, route, ids: vm_get(self._inventory, route),
        }

    def handle(self, request: Request, route: Route | None, ids: RequestIds) -> Response:
        remaining: dict[str, str] = {}
        try:
            self._authenticate(request)
            remaining = self._take_throttle(request, route)
            self._check_api_version(request, route)
            if route is None:
                code = "InvalidResourceType" if is_under_provider(request.path) else "NotFound"
                raise not_found(code, f"No resource type or action at '{request.path}'.")
            if route.method != request.method:
                raise ArmError(405, "MethodNotAllowed", f"The {request.method} method is not supported here.")
            response = self._handlers[route.kind](request, route, ids)
        except ArmError as exc:
            response = exc.to_response()
        # ARM reports the caller's remaining budget on every answer past the throttle, errors included.
        response.headers.update(remaining)
        return response

    def _authenticate(self, request: Request) -> None:
        token = bearer_token(request)
        if token is None:
            raise _unauthorized("InvalidAuthenticationToken", "The request needs an 'Authorization: Bearer' header.")
        issued = self._tokens.lookup(token)
        if issued is None:
            raise _unauthorized("InvalidAuthenticationToken", "The access token is invalid.")
        if self._tokens.expired(issued):
            raise _unauthorized("ExpiredAuthenticationToken", "The access token has expired.")
        if issued.resource not in self.config.token_audiences:
            raise _unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{issued.resource}'.",
            )
        self._stats.tokens_used.add(token_fingerprint(token))

    def _take_throttle(self, request: Request, route: Route | None) -> dict[str, str]:
        if route is None:
            return {}
        kind = "reads" if request.method == "GET" else "writes"
        verdict = self._throttle.take(route["subscription"], kind)
        header = f"x-ms-ratelimit-remaining-subscription-{kind}"
        if not verdict.allowed:
            raise ArmError(
                429, "SubscriptionRequestsThrottled",
                f"Number of '{kind[:-1]}' requests for subscription '{route['subscription']}' exceeded the limit. "
                f"Please try again after '{verdict.retry_after}' seconds.",
                headers={"Retry-After": str(verdict.retry_after), header: "0"},
            )
        return {header: str(verdict.remaining)}

    def _check_api_version(self, request: Request, route: Route | None) -> None:
        version = request.query.get("api-version")
        supported = COMPUTE_API_VERSIONS if route is not None and route.kind == "vm_get" else self.config.api_versions
        if not version:
            raise bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                "api-version",
            )
        if version not in supported:
            raise bad_request(
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{','.join(supported)}'.",
                "api-version",
            )

    def _vault(self, route: Route) -> Vault:
        return self._inventory.vault(route["subscription"], route["resource_group"], route["vault"])

    def _item(self, route: Route) -> Item:
        return self._inventory.item(self._vault(route), route["fabric"], route["container"], route["item"])

    def _operation_urls(self, item: Item, operation_id: str) -> dict[str, str]:
        base = self.base_url + item.path("Subscriptions", for_urls=True)
        query = f"?api-version={OPERATION_API_VERSION}"
        return {
            "Location": f"{base}/operationResults/{operation_id}{query}",
            "Azure-AsyncOperation": f"{base}/operationsStatus/{operation_id}{query}",
        }

    def _trigger(self, request: Request, route: Route, ids: RequestIds) -> Response:
        item = self._item(route)
        now = self._clock.now()
        backup = parse_backup_request(request.body, item, datetime.now(UTC))
        operation = self._state.trigger(
            item, self.config.behaviour_for(item), now, stamped=self._clock.caller_now(),
            activity_id=ids.client_request_id or ids.correlation_id,
            backup_type=backup.backup_type,
            in_progress=self.config.in_progress,
            daily_limit=self.config.daily_limit(item.workload.info.backup_management_type),
            attempt_limit=self.config.attempt_limit(item.workload.info.backup_management_type),
        )
        self._stats.triggers_by_item[item.id] += 1
        headers = self._operation_urls(item, operation.id)
        headers["Retry-After"] = str(self._clock.retry_after(operation.retry_after))
        return Response(202, headers)

    def _find_operation(self, route: Route) -> tuple[Item, Operation]:
        item = self._item(route)
        operation = self._state.operation(item, route["operation"])
        if operation is None:
            raise not_found("ResourceNotFound", f"The operation '{route['operation']}' was not found for this item.")
        return item, operation

    def _operation_status(self, request: Request, route: Route, ids: RequestIds) -> Response:
        _, operation = self._find_operation(route)
        now = self._clock.now()
        headers: dict[str, str] = {}
        if operation.status(now) == "InProgress":
            headers["Retry-After"] = str(self._clock.retry_after(operation.retry_after))
        return json_response(200, operation_status(operation, now), headers)

    def _operation_results(self, request: Request, route: Route, ids: RequestIds) -> Response:
        item, operation = self._find_operation(route)
        status = operation.status(self._clock.now())
        if status == "InProgress":
            headers = self._operation_urls(item, operation.id)
            headers["Retry-After"] = str(self._clock.retry_after(operation.retry_after))
            return Response(202, headers)
        if status == "Succeeded":
            return Response(204)
        if operation.failure is not None:
            raise bad_request(operation.failure.code, operation.failure.message)
        raise bad_request("OperationCanceled", "The operation was canceled.")

    def _job_get(self, request: Request, route: Route, ids: RequestIds) -> Response:
        vault = self._vault(route)
        job = self._state.job(vault, route["job"])
        if job is None:
            raise not_found("ResourceNotFound", f"The job '{route['job']}' was not found in vault '{vault.name}'.")
        return json_response(200, render_job(job, self._clock.now()))

    def _job_list(self, request: Request, route: Route, ids: RequestIds) -> Response:
        vault = self._vault(route)
        query = request.query
        clauses = parse_filter(query.get("$filter"), JOB_FILTERS)
        since = filter_time(clauses["startTime"]) if "startTime" in clauses else None
        until = filter_time(clauses["endTime"]) if "endTime" in clauses else None
        now = self._clock.now()
        jobs = self._state.jobs_in_vault(vault)
        if clauses:
            jobs = [
                j for j in jobs
                if matches(clauses, _job_fields(j, now))
                and (since is None or j.stamped >= since)
                and (until is None or j.stamped <= until)
            ]
        body = page(
            jobs, query, self.config.page_size, self.base_url, request.path,
            lambda j: render_job(j, now, detailed=False),
        )
        return json_response(200, body)

    def _items_list(self, request: Request, route: Route, ids: RequestIds) -> Response:
        vault = self._vault(route)
        query = request.query
        clauses = parse_filter(query.get("$filter"), ITEM_FILTERS)
        now = self._clock.now()
        items = [i for i in self._inventory.items(vault) if matches(clauses, _item_fields(i))]
        body = page(
            items, query, self.config.page_size, self.base_url, request.path,
            lambda i: protected_item(i, self._state.last_finished_job(i, now), self._scheduled_backup),
        )
        return json_response(200, body)


def _job_fields(job: Job, now: datetime) -> dict[str, str]:
    return {
        "operation": "Backup",
        "status": job.status(now),
        "backupManagementType": job.item.workload.info.backup_management_type,
        "jobId": job.id,
    }


def _item_fields(item: Item) -> dict[str, str]:
    return {
        "backupManagementType": item.workload.info.backup_management_type,
        "itemType": item.workload.info.item_prefix,
        "policyName": item.policy,
        "containerName": item.container,
        "name": item.name,
        "friendlyName": item.friendly_name,
    }
