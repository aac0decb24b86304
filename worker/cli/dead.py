"""`wasmq dead list|show|requeue|purge`: look at and act on the dead-letter queue."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..errors import NotRequeueable, UsageError
from ..keys import CALL_MANY_TASK
from ..queue.dead_letters import DeadLetter, DeadLetters
from .common import Parser, SubParsers, print_json

if TYPE_CHECKING:
    from ..producer.client import Client


def add_parser(sub: SubParsers) -> None:
    dead = sub.add_parser("dead", help="the dead-letter queue: jobs that failed for good, malformed messages")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True, parser_class=Parser)
    dead_list = dead_sub.add_parser("list", help="list dead letters, oldest first")
    dead_list.add_argument("--json", action="store_true")
    dead_list.add_argument("--limit", type=int, help="at most this many")
    dead_sub.add_parser("show", help="one dead letter in full").add_argument("id")
    dead_requeue = dead_sub.add_parser("requeue", help="send dead jobs again")
    dead_requeue.add_argument("id", nargs="?")
    dead_requeue.add_argument("--all", action="store_true")
    dead_sub.add_parser("purge", help="delete every dead letter")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _line(entry: DeadLetter) -> str:
    error = entry.error or {}
    return (
        f"{entry.id}  {_when(entry.failed_at)}  {entry.reason:9}  {entry.task or '-':16}  "
        f"attempts={entry.attempts}  {error.get('type')}: {str(error.get('message', ''))[:80]}"
    )


def requeue(client: Client, entry: DeadLetter) -> None:
    """Send a dead job again under its own id, with its retries starting over."""
    if not entry.requeueable or entry.task is None or entry.args is None:
        raise NotRequeueable(
            f"dead letter {entry.id} cannot be requeued: it holds no complete task message ({entry.reason})"
        )
    settings = client.settings
    queue = settings.batch_lane if entry.task == CALL_MANY_TASK else settings.queue
    client.app.send_task(entry.task, args=entry.args, kwargs=entry.kwargs or {}, task_id=entry.id, queue=queue)


def run(args: argparse.Namespace) -> int:
    from ..producer.client import Client

    with Client() as client:
        dead = DeadLetters.for_settings(client.settings)
        if args.dead_command == "list":
            entries = dead.list(args.limit)
            if args.json:
                print_json({"size": dead.size(), "entries": [asdict(e) for e in entries]})
            else:
                print(f"{dead.size()} dead letters")
                for entry in entries:
                    print(_line(entry))
            return 0
        if args.dead_command == "show":
            found = dead.get(args.id)
            if found is None:
                raise UsageError(f"no dead letter with id {args.id!r}")
            print(json.dumps(asdict(found), indent=2, ensure_ascii=False))
            return 0
        if args.dead_command == "purge":
            print(f"purged {dead.purge()} dead letters")
            return 0
        return _requeue(client, dead, args)


def _requeue(client: Client, dead: DeadLetters, args: argparse.Namespace) -> int:
    if args.all == bool(args.id):
        raise UsageError("give one dead-letter ID or --all")
    if args.id:
        entry = dead.get(args.id)
        if entry is None:
            raise UsageError(f"no dead letter with id {args.id!r}")
        entries = [entry]
    else:
        entries = dead.list()
    sent = skipped = 0
    for entry in entries:
        if not entry.requeueable:
            if args.id:
                requeue(client, entry)  # raises the reason
            skipped += 1
            continue
        requeue(client, entry)
        dead.remove(entry.id)
        sent += 1
    print(
        f"requeued {sent} jobs" + (f"; {skipped} malformed or truncated messages cannot be requeued" if skipped else "")
    )
    return 0
