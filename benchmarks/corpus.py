"""The deterministic look-alike corpus at a chosen scale (1.0 = the real feature counts).

The generator itself is `pvdoi.testing.lookalike` (the same files the tests and `pvdoi demo` serve);
this is its command line: ``python -m benchmarks.corpus --scale 1.0 --out benchmarks/out/corpus-1.0``.
"""

from __future__ import annotations

import argparse
import time

from pvdoi.testing.lookalike import write_lookalike_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or f"benchmarks/out/corpus-{args.scale:g}"
    started = time.perf_counter()
    files = write_lookalike_files(out, scale=args.scale, seed=args.seed)
    print(f"wrote {sum(len(v) for v in files.values())} files to {out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
