"""The second baseline: a WeRoBot app that stores nothing, one process.

    gunicorn -w 1 -b 127.0.0.1:P bench.werobot_app:app

It answers the benchmark's account (the same token, EncodingAESKey and AppID) the way a
minimal WeRoBot bot does: it checks the signature, decrypts, parses, answers a `subscribe`
with an encrypted text reply and anything else with `success`. No session, no database, no
attribution. It is served by gunicorn's sync worker, the usual way to run a WSGI app: of the
servers tried on this machine it was the fastest for WeRoBot (1,432 req/s against 251 for
waitress, which `robot.run()` picks, and 760 for gunicorn's threaded worker).
"""

from __future__ import annotations

from werobot import WeRoBot

from bench.pushes import OA_AES_KEY, OA_APPID, OA_TOKEN
from bench.seed import WELCOME


def robot() -> WeRoBot:
    bot = WeRoBot(token=OA_TOKEN, encoding_aes_key=OA_AES_KEY, app_id=OA_APPID)
    bot.config["SESSION_STORAGE"] = False  # stores nothing (the default is an SQLite file)

    @bot.subscribe
    def welcome(message: object) -> str:
        return WELCOME

    @bot.handler
    def anything(message: object) -> str:
        return "success"

    return bot


app = robot().wsgi
