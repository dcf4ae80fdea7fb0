"""`python -m bot rules check FILE` and `python -m bot scores rebuild`."""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from bot.db import close_db, init_db, migrate
from bot.settings import Settings
from domain import rules, scoring
from models import Prospect


def check_rules(args: argparse.Namespace) -> int:
    """Exit 0 and a summary for a good file; exit 1 and the reason, naming the line, for a
    bad one."""
    try:
        loaded = rules.load(args.file)
    except rules.RulesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok — {len(loaded.profile)} profile and {len(loaded.behavior)} "
          f"behaviour rules; an opportunity at fit ≥ {loaded.fit} and engagement ≥ "
          f"{loaded.engagement}; behaviour halves every {loaded.half_life_days:g} days; "
          f"owner by {loaded.attribution.replace('_', ' ')}")
    return 0


async def rebuild_scores(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    loaded = rules.load(settings.scoring_rules)
    if settings.is_sqlite:
        await migrate(settings.database_url)
    await init_db(settings.database_url)
    try:
        people = await Prospect.filter(merged_into_id=None).count()
        started = time.monotonic()
        with tqdm(total=people, desc="scoring", unit="person", file=sys.stderr,
                  disable=args.quiet) as bar:
            done = await scoring.rebuild(loaded, progress=bar.update)
        took = time.monotonic() - started
    finally:
        await close_db()
    print(f"rebuilt the scores of {done} people from the interaction log in {took:.1f}s "
          f"(rules: {loaded.source})")
    return 0
