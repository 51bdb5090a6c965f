import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.serving import serve


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def test_serves_on_loopback_and_stops() -> None:
    app = Starlette(routes=[Route("/x", _echo)])
    with serve(app) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "/x").json() == {"path": "/x"}
    try:
        httpx.get(server.url + "/x", timeout=1)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("server still answering after stop")
