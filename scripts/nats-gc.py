#!/usr/bin/env python3
"""Deletes JetStream streams that test runs left behind on the local NATS.

Every test cluster and bus test makes its own streams under a random subject
root and deletes them when it ends; a run that was killed leaves them, and
each reserves its byte limit against the server's storage, so enough of them
make new streams fail ("insufficient storage resources"). Streams created
more than `--older-than` minutes ago whose names are not the default
deployment's (HEARTH_*) are deleted.
"""
import argparse
import asyncio
import datetime
import json

import nats


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="nats://127.0.0.1:4222")
    ap.add_argument("--older-than", type=int, default=60, help="minutes")
    args = ap.parse_args()
    nc = await nats.connect(args.url)
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=args.older_than)
    deleted = kept = 0
    names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=5)).data).get("streams") or []
    for name in names:
        info = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=5)).data)
        # RFC 3339 with nanoseconds: keep the seconds.
        created = datetime.datetime.fromisoformat(info.get("created", "")[:19] + "+00:00") if info.get("created") else None
        if name.startswith("HEARTH_") or created is None or created > cutoff:
            kept += 1
            continue
        await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"", timeout=5)
        deleted += 1
    await nc.close()
    print(f"nats-gc: deleted {deleted} stale test streams, kept {kept}")


asyncio.run(main())
