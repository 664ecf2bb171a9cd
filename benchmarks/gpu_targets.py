"""The GPU targets of issue 15, checked on a benchmark run's JSON (`benchmarks/gpu_check.sh`).

- W1M (10^6 lecture worlds, tol 1e-3, float32): `jaxmdp VI` (span) under 20 ms on one
  H100/H200-class GPU;
- per-member-P sweeps (W2): `jaxmdp VI` (span) at >= 70% of the device's read bandwidth
  measured in the same run (`limits["accel"]`, the best `jnp.sum` rate; on a CPU dry run the
  host's).

`python -m benchmarks.gpu_targets RUN.json` prints one line per target (met / not met /
not measured) and exits 0; the script decides what to do with them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

W1M_TARGET_S = 0.020
HBM_FRACTION = 0.70


def _row(rows, workload: str, impl: str = "jaxmdp VI", rule: str = "span"):
    for r in rows:
        if (r["workload"], r["impl"], r["rule"]) == (workload, impl, rule) and not r["skipped"]:
            return r
    return None


def check(res: dict) -> list[tuple[str, str, str]]:
    """`[(target, "met" | "not met" | "not measured", detail)]` for the run `res`."""
    rows = res["rows"]
    lim = res["limits"].get("accel") or res["limits"]["host"]
    peak = max(float(v) for v in lim["read_gbps"].values())
    out = []
    r = _row(rows, "W1M")
    name = f"W1M jaxmdp VI < {W1M_TARGET_S * 1e3:.0f} ms"
    if r is None or r.get("median_s") is None or r.get("failed"):
        out.append((name, "not measured", "no W1M jaxmdp VI row"))
    else:
        t = float(r["median_s"])
        ok = t < W1M_TARGET_S and bool(r.get("err_ok"))
        detail = f"{t * 1e3:.2f} ms (B={res['workloads']['W1M']['B']}), err_ok={r.get('err_ok')}"
        out.append((name, "met" if ok else "not met", detail))
    r = _row(rows, "W2")
    name = f"W2 (per-member P) jaxmdp VI >= {HBM_FRACTION:.0%} of read bandwidth"
    if r is None or r.get("gbps") is None or r.get("failed"):
        out.append((name, "not measured", "no W2 jaxmdp VI row"))
    else:
        frac = float(r["gbps"]) / peak
        detail = f"{r['gbps']:.0f} GB/s of {peak:.0f} GB/s measured ({frac:.0%})"
        out.append((name, "met" if frac >= HBM_FRACTION else "not met", detail))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    res = json.loads(Path(args[0]).read_text())
    for target, verdict, detail in check(res):
        print(f"{verdict.upper():>12}  {target}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
