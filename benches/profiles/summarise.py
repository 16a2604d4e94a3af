#!/usr/bin/env python3
"""Where a profiled mall spends its CPU, by part of the stack.

Reads folded stacks (`perf script | inferno-collapse-perf`) and prints the share of samples
falling in each part; a sample counts for the first part (in the order below) one of whose
frames it holds. Usage: benches/profiles/summarise.py FOLDED
"""

import re
import sys
from collections import Counter

PARTS = [
    ("PostgreSQL client: tokio-postgres connection task (socket writes and reads)",
     r"diesel_async::pg::drive_connection|tokio_postgres::connection"),
    ("placement desk (the batch transaction's code)",
     r"mall_actors::placement|mall_db::repo::placements"),
    ("cart actor turns", r"mall_actors::cart::actor"),
    ("order and payment actor turns", r"mall_actors::(order|payment)::actor"),
    ("auth: JWT verification, policy match", r"TokenService::verify|mall_http::auth::policy"),
    ("handlers and handles (JSON in and out, their database calls)",
     r"mall_http::handlers|mall_actors::(cart|order|payment)::handle|mall_actors::checkout"),
    ("HTTP server (actix-http parsing and writing)", r"actix_http::h1"),
    ("parked or switching threads (epoll_wait, the scheduler)",
     r"epoll_wait|park_internal|finish_task_switch|__schedule"),
]
OTHER = "other (async runtime, allocator, kernel paths)"


def main(path):
    total = 0
    shares = Counter()
    with open(path) as folded:
        for line in folded:
            stack, _, count = line.rstrip().rpartition(" ")
            count = int(count)
            total += count
            part = next((name for name, pattern in PARTS if re.search(pattern, stack)), OTHER)
            shares[part] += count
    for name in [name for name, _ in PARTS] + [OTHER]:
        print(f"{100 * shares[name] / max(total, 1):5.1f} %  {name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
