"""The plain-Celery producer of the file batch (bench/filebatch.py): what a Celery user writes.

    python bench/plain_batch.py names.txt out.jsonl [--chunk 500]

Reads every line, sends `greet.chunks(zip(names), K).group()`, waits for all of it, writes one JSON line
per input. Broker, backend and queue from BENCH_REDIS_URL and BENCH_PLAIN_QUEUE (bench/plain_app.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_app import greet


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    names = Path(args.source).read_text(encoding="utf-8").splitlines()
    result = greet.chunks(zip(names), args.chunk).group().apply_async()
    parts = result.get(timeout=3600)
    with open(args.out, "w", encoding="utf-8") as out:
        index = 0
        for part in parts:
            for output in part:
                out.write(json.dumps({"index": index, "input": names[index], "ok": True, "output": output},
                                     ensure_ascii=False) + "\n")  # fmt: skip
                index += 1
    return 0 if index == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
