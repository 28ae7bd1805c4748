#!/usr/bin/env python3
"""Runs every benchmark, alternating implementations run by run, and writes JSON, Markdown
and PNG plots to docs/benchmarks/ (bench/run is the entry point).

    .venv/bin/python bench/bench.py --mode quick --build build/release --out docs/benchmarks

Sections:
  throughput  bench/peers.cc: five topologies x (xdisruptor, hand ring: busy-spin, yielding,
              blocking) and Boost message_queue, pipe, ZeroMQ (kernel waits)
  python      bench/python_consumer.py (C++ producer -> Python: xdisruptor per event and per
              batch, the naive ctypes ring) and bench/python_peers.py (iceoryx2, pyzmq,
              faster-fifo, multiprocessing.Queue, xdisruptor from a Python producer)
  latency     bench/wait_latency.cc: one-way p50/p99/p99.9/max per wait strategy
  micro       bench/micro.cc (Google Benchmark) and the same under callgrind: instructions
Each figure is the median of --runs runs with min and max; each ratio is taken within a round
(every implementation once, in rotating order) and the median of those ratios is reported.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile

MODES = {
    "quick": {"ring_events": 2_000_000, "peer_events": 300_000, "py_events": 200_000,
              "py_batch_events": 1_000_000, "latency_samples": 100_000, "micro_reps": 3},
    "full": {"ring_events": 20_000_000, "peer_events": 2_000_000, "py_events": 1_000_000,
             "py_batch_events": 5_000_000, "latency_samples": 500_000, "micro_reps": 5},
}
TOPOLOGIES = ["unicast", "pipeline", "multicast", "diamond", "sequencer"]
PROCESSES = {"unicast": 2, "pipeline": 4, "multicast": 4, "diamond": 4, "sequencer": 4}


def log(*a):
    print(*a, flush=True)


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def run_json(argv, timeout=900):
    """Runs a benchmark program; returns (rc, the last JSON line or None, stderr)."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith("{")), None)
    return p.returncode, json.loads(line) if line else None, p.stderr


FAILED_RUNS = []  # runs whose checks failed (then retried once): reported, never hidden


def rounds(combos, runs, run_one):
    """Runs every combo once per round, rotating the order; returns {combo: [results]} and
    {combo: reason} for those not applicable (exit 3)."""
    results = {c: [] for c in combos}
    na = {}
    failures = FAILED_RUNS
    for r in range(runs):
        order = combos[r % len(combos):] + combos[:r % len(combos)]
        for combo in order:
            if combo in na:
                continue
            rc, out, err = run_one(combo)
            if rc == 3 and out and "na" in out:
                na[combo] = out["na"]
                continue
            if rc != 0 or not out or not out.get("ok"):
                # Logged and kept in the results (failed_runs); one retry, then give up.
                failures.append({"combo": "/".join(combo), "exit": rc, "stderr": err[-800:]})
                log(f"  {'/'.join(combo)}: run FAILED (exit {rc}), retrying once: "
                    f"{err.strip()[-300:]}")
                rc, out, err = run_one(combo)
                if rc != 0 or not out or not out.get("ok"):
                    raise SystemExit(f"{combo}: run failed twice (exit {rc}): {err[-2000:]}")
            results[combo].append(out)
        log(f"  round {r + 1}/{runs}: " + ", ".join(
            f"{'/'.join(c)} {results[c][-1]['events_per_s'] / 1e6:.2f}M"
            for c in combos if c not in na and results[c]))
    return results, na


def ratios(results, ours, theirs, runs):
    """Median over rounds of ours/theirs, both measured in the same round."""
    a = [r["events_per_s"] for r in results[ours]]
    b = [r["events_per_s"] for r in results[theirs]]
    return statistics.median([x / y for x, y in zip(a, b)]) if len(a) == len(b) == runs else None


# ------------------------------------------------------------------------------ sections
def throughput(cfg, args):
    peers = args.build / "bench/xdisruptor_bench_peers"
    cores = os.cpu_count()
    out = {"cores": cores, "topologies": {}}
    for topo in TOPOLOGIES:
        waits = ["busy-spin", "yielding", "blocking"]
        skipped = {}
        if PROCESSES[topo] > cores:
            waits.remove("busy-spin")
            skipped["busy-spin"] = (f"{PROCESSES[topo]} processes on {cores} cores: spinning "
                                    "waiters take turns on the cores, the figure means nothing")
        combos = [("xdisruptor", w) for w in waits] + \
                 [("hand", w) for w in waits if w != "blocking"] + \
                 [("hand", "blocking"), ("mq", "kernel"), ("pipe", "kernel"), ("zmq", "kernel")]
        log(f"throughput: {topo}")

        def one(combo):
            impl, wait = combo
            events = cfg["ring_events"] if impl in ("xdisruptor", "hand") else cfg["peer_events"]
            return run_json([str(peers), f"--impl={impl}", f"--topology={topo}",
                             f"--wait={wait if wait != 'kernel' else 'blocking'}",
                             f"--events={events}"])

        results, na = rounds(combos, args.runs, one)
        rows = []
        for combo in combos:
            impl, wait = combo
            row = {"impl": impl, "wait": wait}
            if combo in na:
                row["na"] = na[combo]
            else:
                rates = [r["events_per_s"] for r in results[combo]]
                row.update(summarize(rates))
                row["events"] = results[combo][0]["events"]
                ref = ("xdisruptor", wait if wait != "kernel" else "blocking")
                if impl != "xdisruptor" and ref in results:
                    row["xdisruptor_ratio"] = ratios(results, ref, combo, args.runs)
                    row["compared_with"] = f"xdisruptor {ref[1]}"
            rows.append(row)
        out["topologies"][topo] = {"rows": rows, "skipped": skipped}
    return out


def python_rows(cfg, args):
    build = args.build
    own = "own"  # the peer's own way of waiting
    combos = [("cpp", "xdisruptor", m, w) for w in ("busy-spin", "yielding", "blocking")
              for m in ("event", "batch")] + \
             [("cpp", "naive", "event", "busy-spin"), ("cpp", "zmq", "event", own),
              ("py", "xdisruptor", "event", "yielding"), ("py", "xdisruptor", "batch", "yielding"),
              ("py", "iceoryx2", "event", own), ("py", "iceoryx2", "batch", own),
              ("py", "xdisruptor", "prebuilt-event", "yielding"),
              ("py", "xdisruptor", "prebuilt-batch", "yielding"),
              ("py", "zmq", "event", own), ("py", "zmq", "batch", own),
              ("py", "zmq", "prebuilt-event", own), ("py", "zmq", "prebuilt-batch", own),
              ("py", "faster-fifo", "event", own), ("py", "faster-fifo", "batch", own),
              ("py", "mpqueue", "event", own), ("py", "mpqueue", "batch", own)]
    cpp_cache = {}

    def one(combo):
        producer, impl, mode, wait = combo
        events = cfg["py_batch_events"] if mode.endswith("batch") else cfg["py_events"]
        if producer == "cpp" and impl in ("xdisruptor", "naive"):
            # python_consumer.py measures per event and per batch (and the naive ring, whose
            # reader spins) in one go: run it at the first of those rows in a round and hand
            # its figures to the others.
            if combo not in cpp_cache:
                kinds = "naive" if impl == "naive" else "events,batches"
                with tempfile.NamedTemporaryFile(suffix=".json") as f:
                    p = subprocess.run([sys.executable, "bench/python_consumer.py", "--build",
                                        str(build), "--events", str(cfg["py_batch_events"]),
                                        "--runs", "1", "--wait",
                                        "yielding" if impl == "naive" else wait,
                                        "--kinds", kinds, "--json", f.name],
                                       capture_output=True, text=True, timeout=900)
                    if p.returncode != 0:
                        return p.returncode, None, p.stderr
                    data = json.loads(pathlib.Path(f.name).read_text())
                for c, k in ((("cpp", "xdisruptor", "event", wait), "events"),
                             (("cpp", "xdisruptor", "batch", wait), "batches"),
                             (("cpp", "naive", "event", "busy-spin"), "naive")):
                    if k in data["median"]:
                        cpp_cache[c] = {"impl": c[1], "mode": c[2], "ok": True,
                                        "events": data["events"],
                                        "events_per_s": data["median"][k]}
            return 0, cpp_cache.pop(combo), ""
        # prebuilt-event / prebuilt-batch: every event made before the clock starts (issue
        # 19's figures: the transport, not the producer's numpy work making the events)
        return run_json([sys.executable, "bench/python_peers.py", "--impl", f"{impl}-{producer}",
                         "--mode", mode.removeprefix("prebuilt-"), "--events", str(events),
                         "--build", str(build), *(["--prebuilt"] if mode.startswith("prebuilt")
                                                  else [])])

    log("python: C++ and Python producers -> one Python consumer")
    results, _ = rounds(combos, args.runs, one)
    rows = []
    for combo in combos:
        producer, impl, mode, wait = combo
        rates = [r["events_per_s"] for r in results[combo]]
        row = {"producer": producer, "impl": impl, "mode": mode, "wait": wait,
               **summarize(rates)}
        ref = (producer, "xdisruptor", mode, "yielding")
        if impl != "xdisruptor" and ref in results:
            row["xdisruptor_ratio"] = ratios(results, ref, combo, args.runs)
        rows.append(row)
    return {"rows": rows, "cores": os.cpu_count(),
            "note": "ratios against the xdisruptor consumer that yields"}


def latency(cfg, args):
    log("latency: one-way, per wait strategy, C++ and Python consumers")
    keys = ("p50_us", "p99_us", "p999_us", "max_us", "consumer_cpu_percent", "idle_cpu_percent",
            "steal_percent")
    out = {"rate": 100000, "samples": cfg["latency_samples"]}
    for consumer, extra in (("strategies", []), ("python_strategies", [f"--python={sys.executable}"])):
        runs = []
        for r in range(args.runs):
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                p = subprocess.run([str(args.build / "bench/xdisruptor_wait_latency"),
                                    f"--samples={cfg['latency_samples']}", "--rate=100000",
                                    f"--json={f.name}", *extra], capture_output=True, text=True,
                                   timeout=1800)
                if p.returncode != 0:
                    raise SystemExit(f"wait_latency failed: {p.stderr[-2000:]}")
                runs.append(json.loads(pathlib.Path(f.name).read_text()))
            log(f"  {'Python' if extra else 'C++'} run {r + 1}/{args.runs}: " + ", ".join(
                f"{x['strategy']} p50 {x['p50_us']:.1f}us" for x in runs[-1]["results"]))
        out[consumer] = {}
        for i, first in enumerate(runs[0]["results"]):
            out[consumer][first["strategy"]] = {
                k: summarize([run["results"][i][k] for run in runs]) for k in keys}
    return out


def micro(cfg, args):
    log("micro: Google Benchmark, then callgrind")
    binary = args.build / "bench/xdisruptor_bench_micro"
    p = subprocess.run([str(binary), "--benchmark_format=json",
                        f"--benchmark_repetitions={cfg['micro_reps']}",
                        "--benchmark_report_aggregates_only=true"],
                       capture_output=True, text=True, timeout=900)
    data = json.loads(p.stdout)
    times = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            times[b["run_name"]] = {"ns_per_iteration": b["real_time"],
                                    "items_per_second": b.get("items_per_second")}
    specs = [("BM_ClaimPublish/1", "MeasuredClaimPublish", 1),
             ("BM_ClaimPublish/64", "MeasuredClaimPublish", 64),
             ("BM_BarrierWaitReady", "MeasuredBarrierWait", 1),
             ("BM_ProcessorBatchLoop", "MeasuredProcessorRun", 4096)]
    instr = {}
    for name, function, per in specs:
        counts = []
        for n in (1000, 2000):
            q = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                                f"--toggle-collect=*{function}*",
                                "--callgrind-out-file=/dev/null", str(binary),
                                f"--iterations={n}", f"--benchmark_filter=^{name}/"],
                               capture_output=True, text=True, timeout=900)
            m = re.search(r"Collected : (\d+)", q.stderr)
            if not m:
                raise SystemExit(f"callgrind gave no count for {name}: {q.stderr[-1000:]}")
            counts.append(int(m.group(1)))
        per_iteration = (counts[1] - counts[0]) / 1000
        instr[name] = {"instructions_per_iteration": per_iteration,
                       "instructions_per_event": per_iteration / per}
        log(f"  {name}: {per_iteration:.1f} instructions per iteration")
    return {"time": times, "callgrind": instr}


# ------------------------------------------------------------------------------ output
def machine():
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat()}


def fmt_rate(row):
    if "na" in row:
        return "n/a"
    return f"{row['median'] / 1e6:.2f} ({row['min'] / 1e6:.2f}..{row['max'] / 1e6:.2f})"


def markdown(res):
    m = res["machine"]
    lines = [f"# Benchmark results ({res['mode']} mode)", "",
             f"{m['date']}, {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python "
             f"{m['python']}. Medians of {res['runs']} runs (min..max) in millions of 64-byte "
             "events per second; a ratio is xdisruptor / the row, taken within each round and "
             "the median of those. Reproduce with `bench/run " + res["mode"] + "`.", ""]
    for f in res.get("failed_runs", []):
        lines.append(f"- A run of {f['combo']} failed its check (exit {f['exit']}) and was run "
                     "again; the failure is kept in the JSON (`failed_runs`).")
    if res.get("failed_runs"):
        lines.append("")
    if "throughput" in res:
        lines += ["## Throughput across processes (C++)", "",
                  "| topology | implementation | wait | M events/s | xdisruptor / row |",
                  "|---|---|---|---:|---:|"]
        for topo, t in res["throughput"]["topologies"].items():
            for row in t["rows"]:
                ratio = row.get("xdisruptor_ratio")
                note = row.get("na", "")
                against = row.get("compared_with", "")
                ratio_text = f"{ratio:.2f}x (vs {against})" if ratio else ""
                rate_text = fmt_rate(row) if not note else "n/a: " + note
                lines.append(f"| {topo} | {row['impl']} | {row['wait']} | {rate_text} | "
                             f"{ratio_text} |")
            for wait, why in t["skipped"].items():
                lines.append(f"| {topo} | xdisruptor, hand | {wait} | not run: {why} | |")
        lines.append("")
    if "python" in res:
        lines += ["## One Python consumer", "",
                  "Ratios against the xdisruptor consumer that yields, same producer and mode.",
                  "", "| producer | implementation | per | wait | M events/s | xdisruptor / row |",
                  "|---|---|---|---|---:|---:|"]
        for row in res["python"]["rows"]:
            ratio = row.get("xdisruptor_ratio")
            who = "C++" if row["producer"] == "cpp" else "Python"
            ratio_text = f"{ratio:.2f}x" if ratio else ""
            lines.append(f"| {who} | {row['impl']} | {row['mode']} | {row.get('wait', '')} | "
                         f"{fmt_rate(row)} | {ratio_text} |")
        lines.append("")
    if "latency" in res:
        lat = res["latency"]
        for key, who in (("strategies", "C++"), ("python_strategies", "Python")):
            if key not in lat:
                continue
            lines += [f"## One-way latency, C++ producer -> {who} consumer process "
                      f"({lat['samples']:,} samples per run at {lat['rate']:,} events/s)", "",
                      "spin-probe: no ring, a no-op loop spinning on the clock (this VM's own "
                      "tail); steal: the VM's steal time over the row, % of all vCPU time.", "",
                      "| wait | p50 us | p99 us | p99.9 us | max us | consumer CPU % | "
                      "idle CPU % | steal % |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for s, v in lat[key].items():
                lines.append(f"| {s} | " + " | ".join(
                    f"{v[k]['median']:.{2 if k == 'steal_percent' else 1}f}" if k in v else ""
                    for k in ("p50_us", "p99_us", "p999_us", "max_us", "consumer_cpu_percent",
                              "idle_cpu_percent", "steal_percent")) + " |")
            lines.append("")
    if "micro" in res:
        lines += ["## Hot operations in one process (Google Benchmark; callgrind)", "",
                  "| benchmark | ns per iteration (median) | instructions per iteration | "
                  "per event |", "|---|---:|---:|---:|"]
        for name, c in res["micro"]["callgrind"].items():
            t = res["micro"]["time"].get(name, {})
            lines.append(f"| {name} | {t.get('ns_per_iteration', float('nan')):.1f} | "
                         f"{c['instructions_per_iteration']:.1f} | "
                         f"{c['instructions_per_event']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def plots(res, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = res["machine"]
    stamp = f"{m['date']}, {m['cores']} cores, {m['cpu']}"
    if "throughput" in res:
        fig, ax = plt.subplots(figsize=(11, 5))
        labels, series = [], {}
        for topo, t in res["throughput"]["topologies"].items():
            labels.append(topo)
            for row in t["rows"]:
                key = f"{row['impl']} ({row['wait']})"
                series.setdefault(key, {})[topo] = row
        width = 0.8 / max(1, len(series))
        for i, (key, by_topo) in enumerate(series.items()):
            xs, ys, lo, hi = [], [], [], []
            for j, topo in enumerate(labels):
                row = by_topo.get(topo)
                if row and "median" in row:
                    xs.append(j + i * width)
                    ys.append(row["median"] / 1e6)
                    lo.append((row["median"] - row["min"]) / 1e6)
                    hi.append((row["max"] - row["median"]) / 1e6)
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], label=key, capsize=2)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels)
        ax.set_yscale("log")
        ax.set_ylabel("M events/s (median, min..max; log scale)")
        ax.set_title(f"Throughput across processes, 64-byte events ({stamp})", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=110)
        plt.close(fig)
    if "python" in res:
        fig, ax = plt.subplots(figsize=(10, 5))
        rows = res["python"]["rows"]
        names = [f"{'C++' if r['producer'] == 'cpp' else 'Py'}->Py {r['impl']} per {r['mode']}"
                 + (f" ({r['wait']})" if r.get("wait") not in (None, "own") else "")
                 for r in rows]
        ax.barh(names, [r["median"] / 1e6 for r in rows],
                xerr=[[(r["median"] - r["min"]) / 1e6 for r in rows],
                      [(r["max"] - r["median"]) / 1e6 for r in rows]], capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("M events/s (median, min..max; log scale)")
        ax.set_title(f"One Python consumer ({stamp})", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "python.png", dpi=110)
        plt.close(fig)
    if "latency" in res:
        panels = [(k, w) for k, w in (("strategies", "C++"), ("python_strategies", "Python"))
                  if k in res["latency"]]
        fig, axes = plt.subplots(1, len(panels), figsize=(9 * len(panels), 5), squeeze=False)
        keys = ("p50_us", "p99_us", "p999_us", "max_us")
        for ax, (panel, who) in zip(axes[0], panels):
            strategies = list(res["latency"][panel])
            width = 0.8 / len(keys)
            for i, k in enumerate(keys):
                ax.bar([j + i * width for j in range(len(strategies))],
                       [res["latency"][panel][s][k]["median"] for s in strategies], width,
                       label=k.replace("_us", "").replace("p999", "p99.9"))
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(strategies))], strategies,
                          fontsize=8, rotation=20)
            ax.set_yscale("log")
            ax.set_ylabel("microseconds (median of runs; log scale)")
            ax.set_title(f"One-way latency, C++ -> {who} consumer ({stamp})", fontsize=9)
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="quick")
    parser.add_argument("--build", type=pathlib.Path, default=pathlib.Path("build/release"))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/benchmarks"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="throughput,python,latency,micro",
                        help="sections to measure; the others are kept from the last results")
    args = parser.parse_args()
    cfg = MODES[args.mode]
    res = {"mode": args.mode, "runs": args.runs, "machine": machine(), "config": cfg}
    sections = args.only.split(",")
    previous = args.out / f"results-{args.mode}.json"
    if previous.exists() and len(sections) < 4:
        # --only re-measures some sections; the others stay as they were measured.
        old = json.loads(previous.read_text())
        res.update({k: v for k, v in old.items() if k in ("throughput", "python", "latency",
                                                           "micro")})
    for name, fn in (("throughput", throughput), ("python", python_rows),
                     ("latency", latency), ("micro", micro)):
        if name in sections:
            res[name] = fn(cfg, args)
    res["failed_runs"] = res.get("failed_runs", []) + FAILED_RUNS if len(sections) < 4 \
        else FAILED_RUNS
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"results-{args.mode}"
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(res) + "\n")
    plots(res, args.out)
    log(markdown(res))
    log(f"wrote {args.out}/{stem}.json, {stem}.md and the plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
