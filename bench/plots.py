"""The benchmark report's plots, drawn from the JSON the benchmarks write (--json):

- miss_latency.png from bench/xtr.py: the distribution of cold-cache miss-to-flow-installed
  latencies (histogram and empirical CDF), with the baseline (OpenFlow echo RTT + one UDP round
  trip between the RLOCs) and the goal (baseline + 2 ms) marked;
- flows_per_second.png from bench/flows.py: flows installed per second against N, lisp_app's bulk
  API and ``ovs-ofctl --bundle add-flows``.

    .venv/bin/python bench/plots.py --xtr xtr.json --flows flows.json --out docs/

Either input may be left out; each plot is drawn from what is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def miss_latency_plot(figures: dict, path: Path) -> Path:
    plt = _pyplot()
    samples = sorted(figures["miss"]["latency_ms"])
    if not samples:
        raise ValueError("the xtr figures hold no miss latency samples")
    summary = figures["summary"]
    baseline = summary["miss_baseline_p50_ms"]
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(10, 4))
    hist.hist(samples, bins=max(5, min(40, len(samples) // 2)), color="tab:blue")
    hist.set_xlabel("cold-cache miss to flow installed (ms)")
    hist.set_ylabel("samples")
    n = len(samples)
    cdf.step(samples, [(i + 1) / n for i in range(n)], where="post", color="tab:blue",
             label="lisp_app miss latency")
    for ax in (hist, cdf):
        ax.axvline(baseline, color="tab:green", linestyle="--",
                   label=f"echo RTT + UDP RTT (p50) {baseline:.2f} ms")
        ax.axvline(baseline + 2.0, color="tab:red", linestyle=":",
                   label="goal: baseline + 2 ms")
        ax.axvline(summary["miss_latency_p50_ms"], color="black", linewidth=0.8,
                   label=f"p50 {summary['miss_latency_p50_ms']:.2f} ms")
    cdf.set_xlabel("cold-cache miss to flow installed (ms)")
    cdf.set_ylabel("fraction of samples")
    cdf.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"bench/xtr.py: miss latency, {n} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def flows_plot(figures: dict, path: Path) -> Path:
    plt = _pyplot()
    sizes = sorted(int(n) for n in figures["summary"])
    if not sizes:
        raise ValueError("the flows figures hold no sizes")
    ours = [figures["summary"][str(n)]["ours_flows_per_s"] for n in sizes]
    base = [figures["summary"][str(n)]["baseline_flows_per_s"] for n in sizes]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, base, marker="o", label="ovs-ofctl --bundle add-flows")
    ax.plot(sizes, ours, marker="s", label="lisp_app bulk API (POST /map)")
    ax.set_xscale("log")
    ax.set_xlabel("mappings installed at once (N)")
    ax.set_ylabel("flows installed per second")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("bench/flows.py: until the switch holds the flows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xtr", type=Path, help="JSON written by bench/xtr.py --json")
    parser.add_argument("--flows", type=Path, help="JSON written by bench/flows.py --json")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for the PNGs")
    args = parser.parse_args(argv)
    if not args.xtr and not args.flows:
        parser.error("give --xtr and/or --flows")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        if args.xtr:
            print(miss_latency_plot(json.loads(args.xtr.read_text()),
                                    args.out / "miss_latency.png"))
        if args.flows:
            print(flows_plot(json.loads(args.flows.read_text()),
                             args.out / "flows_per_second.png"))
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench/plots.py: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
