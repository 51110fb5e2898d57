"""Long-lived objects of the anonymizer and the dependency that hands them to routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from anonymizer.proxy import AnonymizingProxy

__all__ = ["ProxyDep", "get_proxy"]


async def get_proxy(request: Request) -> AnonymizingProxy:
    """The app's proxy, built once by `create_app`."""
    proxy: AnonymizingProxy = request.app.state.proxy
    return proxy


ProxyDep = Annotated[AnonymizingProxy, Depends(get_proxy)]
