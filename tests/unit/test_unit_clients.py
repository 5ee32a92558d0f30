"""Clients handed out by the rws handle share one TLS context, and it still verifies."""

from __future__ import annotations

import ssl

from pytest_responses_ws import clients


def test_shared_tls_context_is_built_once_and_verifies() -> None:
    first = clients.sdk_http_client(asynchronous=False)
    context = clients._tls_context
    clients.sdk_http_client(asynchronous=True)  # the async client reuses it
    try:
        assert clients._tls_context is context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    finally:
        first.close()
