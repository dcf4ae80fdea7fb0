"""The baseline: a bare aiohttp hello-world, one process, no access log.

`python -m bench.hello --port P` answers `success` to a POST on /wechat/oa and /mp/reads, the
paths the benchmarks' requests go to, without looking at them.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="success")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hello")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="on libuv's loop, as the service")
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/wechat/oa", hello)
    app.router.add_post("/mp/reads", hello)
    loop = None
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
