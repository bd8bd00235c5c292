#!/usr/bin/env python3
"""Writes an ML-20M-sized synthetic split for the GPU benchmark, PREFIX.train.tsv and
PREFIX.test.negative, in the format of ../shared/data/ml-100k/loo.* (what the core `loo`
example and ../shared/bench/reference_neumf.py read), with the distribution of the SQL generator
neumf_synthetic_interactions (sql/synthetic.sql): per-user activity 0.25-1.75 x per_user, a
share `in_cluster` of each user's items from the user's planted cluster, popularity skewed by
r^skew. Vectorised numpy (the TSV too: np.savetxt would take a minute for 20M rows), so the
20M rows take seconds, on any machine (no PostgreSQL needed).

usage: synthetic.py PREFIX [--users 138000] [--items 27000] [--per-user 145] [--clusters 8]
       [--in-cluster 0.8] [--skew 2.0] [--test-users 1000] [--seed 42]
"""
import argparse
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("prefix")
ap.add_argument("--users", type=int, default=138000)
ap.add_argument("--items", type=int, default=27000)
ap.add_argument("--per-user", type=int, default=145)
ap.add_argument("--clusters", type=int, default=8)
ap.add_argument("--in-cluster", type=float, default=0.8)
ap.add_argument("--skew", type=float, default=2.0)
ap.add_argument("--test-users", type=int, default=1000)
ap.add_argument("--seed", type=int, default=42)
a = ap.parse_args()


def write_int_tsv(path, cols):
    """Writes non-negative int64 columns as TSV, formatting the digits with array operations."""
    widths = [1 + sum((c >= 10 ** k).astype(np.int64) for k in range(1, 19)) for c in cols]
    row_len = sum(widths) + len(cols)  # digits, tabs and the newline
    offset = np.cumsum(row_len) - row_len
    buf = np.empty(int(row_len.sum()), dtype=np.uint8)
    for j, (c, w) in enumerate(zip(cols, widths)):
        for k in range(int(w.max())):  # k-th digit from the right
            has = w > k
            buf[(offset + w - 1 - k)[has]] = (48 + (c[has] // 10 ** k) % 10).astype(np.uint8)
        offset = offset + w
        buf[offset] = 9 if j + 1 < len(cols) else 10
        offset = offset + 1
    buf.tofile(path)


rng = np.random.default_rng(a.seed)

n = np.maximum(1, np.round(a.per_user * (0.25 + 1.5 * rng.random(a.users)))).astype(np.int64)
u = np.repeat(np.arange(a.users, dtype=np.int64), n)
k = np.arange(len(u), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n) + 1  # 1..n per user
own = rng.random(len(u)) < a.in_cluster
r = rng.random(len(u)) ** a.skew
per_cluster = a.items // a.clusters
item = np.where(own,
                ((np.floor(r * per_cluster).astype(np.int64) * a.clusters + u % a.clusters) % a.items) + 1,
                np.floor(r * a.items).astype(np.int64) + 1)
rating = np.where(own, 4 + (rng.random(len(u)) < 0.5), 1 + np.floor(rng.random(len(u)) * 5)).astype(np.int64)
ts = 1577836800 + k * 3600 + u  # 2020-01-01 + k hours + u seconds, as the SQL generator
user = u + 1

# Fixed test candidates for the reference's evaluation: for evenly spaced users, one item they
# did not draw and 99 more; the benchmark compares speed, these only let both programs run.
test_users = np.linspace(1, a.users, num=min(a.test_users, a.users), dtype=np.int64)
write_int_tsv(a.prefix + ".train.tsv", [user, item, rating, ts])
with open(a.prefix + ".test.negative", "w") as f:
    for t in test_users:
        cands = rng.choice(a.items, size=100, replace=False) + 1
        f.write("%d\t%d\t%s\n" % (t, cands[0], ",".join(str(c) for c in cands[1:])))
print("%d interactions, %d users, %d items -> %s.train.tsv" % (len(u), a.users, a.items, a.prefix))
