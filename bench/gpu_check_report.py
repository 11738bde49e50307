"""The one table ``bench/gpu_check.sh`` prints: its parts, the throughput benchmark and the doctor checks.

Usage: ``python bench/gpu_check_report.py OUT_DIR`` (reads ``parts.tsv``, ``bench.json``, ``doctor.json``).
Standard library only. Exit 1 when a part failed or timed out, or a doctor check failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    out = Path((argv if argv is not None else sys.argv[1:])[0])
    rows: list[tuple[str, str, str]] = []
    failed = False
    for line in (out / "parts.tsv").read_text(encoding="utf-8").splitlines():
        name, rc, secs, limit = line.split("\t")
        status = "ok" if rc == "0" else ("TIMEOUT" if rc in ("124", "137") else f"FAILED (exit {rc})")
        failed |= rc != "0"
        rows.append((f"part: {name}", status, f"{float(secs):.0f} s of {limit} s"))
    bench = load(out / "bench.json")
    if bench:
        base = bench["baseline"]
        rows.append(("throughput (a) generate, batch 1", f"{base['tactics_per_s']:.2f} tactics/s",
                     f"{base['tokens_per_s']:.0f} tokens/s, {base['goals']} goals, "
                     f"{base['params'] / 1e9:.2f}B params"))
        for r in bench["server"]:
            rows.append((f"throughput (b) server, {r['workers']} workers",
                         f"{r['tactics_per_s']:.2f} tactics/s",
                         f"{r['tactics_per_s'] / base['tactics_per_s']:.2f}x (a); mean batch "
                         f"{r['mean_batch']:.1f}; {r['mode']}"))
        ab = bench["prefix_cache_ablation"]
        rows.append(("prefix KV cache", f"{ab['speedup']:.2f}x", f"{ab['prefix_tokens']} prefix tokens"))
        args = bench["args"]
        rows.append(("benchmark settings", f"k={args['k']}", f"max_new_tokens={args['max_new_tokens']}, "
                     f"shape {args['shape']}, tokenizer {bench.get('tokenizer')}, device {args['device']}, "
                     f"dtype {args['dtype']}"))
    doctor = load(out / "doctor.json")
    if doctor:
        for c in doctor["checks"]:
            failed |= c["outcome"] == "fail"
            rows.append((f"doctor {c['component']}: {c['name']}", c["outcome"],
                         c["seen"] + (f"  -> {c['remedy']}" if c["remedy"] else "")))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"\n{'check':{w0}}  {'result':{w1}}  detail")
    for a, b, c in rows:
        print(f"{a:{w0}}  {b:{w1}}  {c}")
    print(f"\ngpu_check: {'FAILED' if failed else 'all parts passed'} (details in {out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
