"""A throw-away local CA and a server certificate for 127.0.0.1, so clients verify TLS exactly as against Azure."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

CA_FILE = "ca.pem"


def issue_certificates(state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """Write the CA to `state_dir/ca.pem` (what REQUESTS_CA_BUNDLE points at); the server key stays in memory."""
    ca = trustme.CA(organization_name="Backup emulator local CA")
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = state_dir / CA_FILE
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_cert.configure_cert(context)
    return context, ca_path
