"""The local host runs the app with exactly the app settings infra/ declares: template and app cannot drift.

The settings come from the template's syntax tree (tests.infra.app_template), at the template's
own timings. Only what Azure itself provides is replaced by the local stack's: the storage
endpoints (a whole Azurite over https with ``--oauth basic``, so that storage is reached by
identity exactly as the template configures it: no connection string, no key), the managed
identity endpoint and ARM (the emulator) and the CA bundle that trusts both. Deploy-time values
that are not endpoints (the identity's client id, the Application Insights connection string)
get stand-ins. The queues and the table are created as the template declares them, then the
bundled samples run through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import trustme
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite, Tls
from devtools.quickstart import SAMPLES
from devtools.stack import LocalStack
from tests.infra.app_template import app_settings, deployed, function_folders, of_kind
from tests.infra.bicep import Ref, concrete
from tests.integration.conftest import Results, Suite
from tests.integration.test_samples import SUCCEEDED
from tests.integration.test_samples import _key as sample_key

pytestmark = pytest.mark.integration

TEMPLATE_REFUSED = ("rejected-path-traversal.json", "rejected-missing-backup-type.json")

CLIENT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-000000000011"
SETUP_CLIENT_ID = "5e7a0000-0000-0000-0000-00000000c0de"  # the test's own token, to create the table
# The app sends no telemetry itself; the host here has no exporter. A well-formed stand-in.
INSIGHTS = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
# The template's own timings: a job is first polled JOB_POLL_INITIAL_SECONDS (60 s) after it exists.
RESULTS_TIMEOUT = 240


@pytest.fixture(scope="module")
def oauth_azurite(suite_session: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Azurite, Path]]:
    """Blob, queue and table over https, taking the emulator's tokens; and a CA bundle for both servers."""
    folder = tmp_path_factory.mktemp("azurite-oauth")
    ca = trustme.CA(organization_name="Azurite local CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    tls = Tls(folder / "cert.pem", folder / "key.pem")
    server.cert_chain_pems[0].write_to_path(str(tls.cert))
    server.private_key_pem.write_to_path(str(tls.key))
    bundle = folder / "ca-bundle.pem"
    bundle.write_bytes(Path(suite_session.stack.endpoints.ca_bundle).read_bytes() + ca.cert_pem.bytes())
    azurite = Azurite(f"{suite_session.stack.name}-oauth", tls=tls, fresh=True,
                      log_path=suite_session.stack.log_path("azurite-oauth"))
    with azurite:
        yield azurite, bundle


def _stand_in(azurite: Azurite, ref: Ref) -> str:
    if ref.path[:2] == ("properties", "primaryEndpoints"):
        return f"{azurite.endpoint(ref.path[2])}/"  # Azure's primaryEndpoints end in a slash too
    if ref.path == ("properties", "clientId"):
        return CLIENT_ID
    if ref.path == ("properties", "ConnectionString"):
        return INSIGHTS
    raise AssertionError(f"no local stand-in for {ref}: a new deploy-time value in the template's settings?")


def test_the_local_host_runs_the_samples_with_the_templates_settings(
    suite: Suite, oauth_azurite: tuple[Azurite, Path]
) -> None:
    azurite, bundle = oauth_azurite
    template = deployed()
    settings = {name: concrete(value, lambda ref: _stand_in(azurite, ref))
                for name, value in app_settings(template).items()}
    endpoints = suite.stack.endpoints
    environment = {
        **LocalStack.base_environment(),
        **settings,
        "ARM_ENDPOINT": endpoints.arm_endpoint,
        "IDENTITY_ENDPOINT": endpoints.identity_endpoint,
        "IDENTITY_HEADER": endpoints.identity_header,
        "REQUESTS_CA_BUNDLE": str(bundle),
        "PYTHONUNBUFFERED": "1",
    }
    assert not [name for name in environment if name.lower() == "azurewebjobsstorage"]
    assert not [name for name, value in environment.items() if "AccountKey=" in value]

    # What the deployment creates: every queue and table the template declares (the test's own
    # client may use the account key; the app never sees it).
    service = QueueServiceClient.from_connection_string(azurite.connection_string, connection_verify=str(bundle))
    for queue in of_kind(template, "Microsoft.Storage/storageAccounts/queueServices/queues"):
        with suppress(ResourceExistsError):
            service.create_queue(str(queue.name))
    for table in of_kind(template, "Microsoft.Storage/storageAccounts/tableServices/tables"):
        _create_table(azurite, bundle, suite, str(table.name))

    # The samples whose outcome does not hang on the quick start's own settings (its allow-list).
    expected = {**dict.fromkeys(SUCCEEDED, "Succeeded"), **dict.fromkeys(TEMPLATE_REFUSED, "Rejected")}
    samples = [SAMPLES / name for name in sorted(expected)]
    with suite.host("template", environment):
        ready = json.loads(suite.ready_file("template").read_text(encoding="utf-8"))
        assert sorted(ready["functions"]) == sorted(folder.name for folder in function_folders())
        requests_queue = service.get_queue_client(settings["BACKUP_REQUESTS_QUEUE"])
        for path in samples:
            requests_queue.send_message(path.read_text(encoding="utf-8"))
        correlation_ids = {path.name: sample_key(path.read_text(encoding="utf-8"))[1] for path in samples}
        results = Results(service.get_queue_client(settings["BACKUP_RESULTS_QUEUE"]))
        found = results.wait_for(correlation_ids.values(), timeout=RESULTS_TIMEOUT)

    for name, status in expected.items():
        result = found[correlation_ids[name]]
        suite.check_schema(result)
        assert result["status"] == status, (name, result)

    # Every token, for storage and for ARM, was the template's identity's (AZURE_CLIENT_ID and
    # AzureWebJobsStorage__clientId), and storage was reached with tokens only.
    token_requests = [query for query in (parse_qs(urlsplit(entry["path"]).query) for entry in suite.admin.requests()
                                          if entry["kind"] == "token") if query.get("client_id") != [SETUP_CLIENT_ID]]
    resources = {query["resource"][0].rstrip("/") for query in token_requests}
    assert {"https://storage.azure.com", "https://management.azure.com"} <= resources, resources
    assert all(query.get("client_id") == [CLIENT_ID] for query in token_requests), token_requests


def _create_table(azurite: Azurite, bundle: Path, suite: Suite, name: str) -> None:
    """Create Table over REST with a bearer token, so the test needs no table SDK of its own."""
    endpoints = suite.stack.endpoints
    token = requests.get(endpoints.identity_endpoint, params={"api-version": "2019-08-01",
                         "resource": "https://storage.azure.com", "client_id": SETUP_CLIENT_ID},
                         headers={"X-IDENTITY-HEADER": endpoints.identity_header}, timeout=10).json()["access_token"]
    response = requests.post(
        f"{azurite.endpoint('table')}/Tables", json={"TableName": name}, timeout=10, verify=str(bundle),
        headers={"Authorization": f"Bearer {token}", "x-ms-version": "2019-02-02", "DataServiceVersion": "3.0",
                 "Accept": "application/json;odata=nometadata"},
    )
    assert response.status_code in (201, 204, 409), response.text
