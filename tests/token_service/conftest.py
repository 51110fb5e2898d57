"""Fixtures for the token service's route tests."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import token_service_settings
from token_service.app import create_app

ClientFactory = Callable[..., TestClient]


def basic(user: str, password: str) -> dict[str, str]:
    """An `Authorization: Basic` header."""
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build a client on a fresh app from settings overrides; lifespan runs."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(token_service_settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """A token service with standard shares enabled and no credentials."""
    return make_client()
