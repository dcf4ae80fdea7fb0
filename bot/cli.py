"""`python -m bot COMMAND`: serve, worker, sandbox, migrate, codes, rules, scores, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import sys

from aiohttp import web

from bot.errors import MissingSetting, SettingError
from bot.settings import Settings

log = logging.getLogger("bot")


def _serve(args: argparse.Namespace) -> int:
    import uvloop

    from bot.app import create_app

    settings = Settings.from_env()
    for line in settings.unconfigured():
        log.info("%s", line)
    log.info("scoring with the rules in %s", settings.scoring_rules or
             "domain/scoring_rules.yaml (the defaults; SCRM_SCORING_RULES names another file)")
    app = create_app(settings, worker=not args.no_worker)
    worker = "off" if args.no_worker else "on"
    _tune_gc()
    # libuv's event loop: the callback path spends much of its time in socket reads and writes.
    # The server's options (limits, timeouts, access log) travel with the app: bot.api.
    try:
        web.run_app(app, host=args.host, port=args.port, shutdown_timeout=15,
                    print=lambda _: log.info("serving on http://%s:%d (worker %s)", args.host,
                                             args.port, worker),
                    loop=uvloop.new_event_loop())
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    return 0


def _tune_gc() -> None:
    """Before a long-running process starts its loop: what startup made (modules, the app) is
    moved out of the collector's reach, and young collections run less often. A push makes
    hundreds of short-lived objects; with the defaults the collector ran every request or two,
    and its full passes over the startup heap were the slowest 1 % of answers (the booth
    path's p99 fell from about 150 ms to 65-90 ms: bench/callbacks.py --mix follow)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _worker(args: argparse.Namespace) -> int:
    from bot.app import create_app

    async def run() -> None:
        runner = web.AppRunner(create_app(Settings.from_env(), worker=True, serve_http=False))
        _tune_gc()
        await runner.setup()  # runs the cleanup contexts: database, store, pipeline, worker
        log.info("worker running")
        try:
            await _until_signalled()
        finally:
            await runner.cleanup()

    asyncio.run(run())
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import run_sandbox

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_sandbox(Settings.from_env(), args.host, args.port))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from bot.db import migrate

    settings = Settings.from_env()
    applied = asyncio.run(migrate(settings.database_url))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _codes_issue(args: argparse.Namespace) -> int:
    from bot.codes_cli import issue_codes

    return asyncio.run(issue_codes(args))


def _rules_check(args: argparse.Namespace) -> int:
    from bot.scores_cli import check_rules

    return check_rules(args)


def _scores_rebuild(args: argparse.Namespace) -> int:
    from bot.scores_cli import rebuild_scores

    return asyncio.run(rebuild_scores(args))


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return asyncio.run(run_demo(args.database))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bot",
                                  description="WeChat B2B SCRM: callbacks, codes, prospects.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="the HTTP service (callbacks, mini-program, admin)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-worker", action="store_true",
                       help="leave background work to `python -m bot worker` processes")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="background work only (for scale-out)")
    worker.set_defaults(run=_worker)

    sandbox = commands.add_parser(
        "sandbox", help="the WeChat sandbox alone (a local WeChat)",
        description="A local stand-in for WeChat's APIs (OA, mini program, WeCom) that also sends "
        "signed pushes to a callback. It accepts the accounts of the same SCRM_* settings the "
        "service runs with — SCRM_OA_APPID/SECRET/TOKEN/AES_KEY, SCRM_MP_APPID/SECRET, "
        "SCRM_WECOM_CORPID/SECRET/TOKEN/AES_KEY, SCRM_OA_OPPORTUNITY_TEMPLATE_ID — so start it "
        "and `serve` from one environment, with SCRM_WECHAT_API_BASE, SCRM_WECHAT_MP_BASE and "
        "SCRM_WECOM_API_BASE pointing at it. GET /sandbox/ lists its control routes.")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8081)
    sandbox.set_defaults(run=_sandbox)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=_migrate)

    codes = commands.add_parser("codes", help="issue and print codes")
    code_commands = codes.add_subparsers(dest="codes_command", required=True, metavar="ACTION")
    issue = code_commands.add_parser(
        "issue", help="issue codes through WeChat and print them (PNG, or an A4 PDF sheet)")
    issue.add_argument("--kind", required=True, help="booth, material, salesperson or partner")
    issue.add_argument("--channel", default="mp", help="oa, mp or wecom (default: mp)")
    issue.add_argument("--campaign")
    issue.add_argument("--salesperson-id", type=int)
    issue.add_argument("--partner-id", type=int)
    issue.add_argument("--material-id", type=int)
    issue.add_argument("--team", help="a booth team whose members take turns")
    issue.add_argument("--backup-salesperson-id", type=int)
    issue.add_argument("--tags", default="", help="comma-separated tags for the prospects")
    issue.add_argument("--welcome", help="the welcome text (default: a Chinese greeting)")
    issue.add_argument("--permanent", action="store_true",
                       help="permanent OA codes (never expire; the account has 100,000)")
    issue.add_argument("--expire-days", type=int,
                       help="days a temporary OA code works, 1 to 30 (default 30)")
    issue.add_argument("--page", help="mini-program page (default pages/index/index)")
    issue.add_argument("--count", type=int, default=1, help="codes in a material batch")
    issue.add_argument("--sheet", help="write an A4 PDF sheet of the batch to this file")
    issue.add_argument("--png", help="write the (first) code's PNG to this file")
    issue.set_defaults(run=_codes_issue)

    rules = commands.add_parser("rules", help="scoring rules")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rule_commands.add_parser(
        "check", help="validate a scoring-rules file (a bad one is refused naming the line)",
        description="Validates a scoring-rules file like the one SCRM_SCORING_RULES names; the "
        "defaults, with every field explained, are domain/scoring_rules.yaml.")
    check.add_argument("file")
    check.set_defaults(run=_rules_check)

    scores = commands.add_parser("scores", help="prospects' scores")
    score_commands = scores.add_subparsers(dest="scores_command", required=True,
                                           metavar="ACTION")
    rebuild = score_commands.add_parser(
        "rebuild", help="recompute every score and ledger from the interaction log",
        description="Recomputes every prospect's score ledger from the interaction log with "
        "the rules in force (SCRM_SCORING_RULES or the defaults): run it after editing the "
        "rules. Opportunities are neither created nor pushed again.")
    rebuild.add_argument("--quiet", action="store_true", help="no progress bar")
    rebuild.set_defaults(run=_scores_rebuild)

    demo = commands.add_parser("demo", help="a zero-setup tour on the embedded default")
    demo.add_argument("--database", default=None,
                      help="SQLite file to use (default: a fresh temporary one)")
    demo.set_defaults(run=_demo)
    return top


def main(argv: list[str] | None = None) -> int:
    from bot.logs import setup_logging

    args = parser().parse_args(argv)
    setup_logging(logging.INFO)
    try:
        return int(args.run(args))
    except (SettingError, MissingSetting) as exc:  # one line naming the variable, no traceback
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
