"""Layer-engine simulation speed: Verilator bulk vs Icarus + cocotb vs Verilator + cocotb.

(The cocotb rows run ``make sim``'s job: ``qmac_top`` driven through cocotbext-axi, whose
bus models cost more Python time per cycle than the bare engine's drivers; the bulk rows
drive the bare ``qlayer_engine``.  Both count compute plus the load cycles not hidden.)

One workload for all three: the shipped INT8 digits CNN (``make sim``'s network job) on
the default 8x8 engine, every output element checked against the golden model.

* Icarus + cocotb (the baseline, ``make sim``) and Verilator + cocotb run it on the first
  ``COCOTB_IMAGES`` test images through ``tb/test_network.py``; their rate is the run's
  simulated cycles (compute + loading) over the wall time of the network coroutine inside
  the simulator (``NetworkReport.sim_seconds``: no build, no start-up).
* Verilator bulk (``tb/bulk.py``, ``make sim SIM=verilator``) runs the same images, then
  all 540 test images; its rate is the same cycles over the time spent in the C++ harness
  (job files written, streamed, results read back), and, as a second figure, over the
  whole host-side network run (``im2col``, golden model, checks included).
* Finally ``python -m tb.run --sim verilator --images 540`` as a user runs it, wall
  clock from process start (harness build reused), and the harness build from scratch.

Builds are done before anything is timed.  The acceptance targets (issue 12): bulk >= 20x
Icarus + cocotb, and all 540 images in < 60 s wall with 0 mismatches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from tb import bulk, kit, test_network

COCOTB_IMAGES = 8
ALL_IMAGES = 540


def _cocotb(sim: str, images: int):
    """The network job through cocotb on ``sim``; the report."""
    saved = os.environ.get("QMAC_SIM")
    os.environ["QMAC_SIM"] = sim
    try:
        return test_network.run(images=images, quiet=True)
    finally:
        if saved is None:
            os.environ.pop("QMAC_SIM", None)
        else:
            os.environ["QMAC_SIM"] = saved


def _row(name: str, images: int, cycles: int, seconds: float, base: float, note: str = "") -> str:
    rate = cycles / seconds if seconds else float("inf")
    return (f"{name:34s} {images:>6d} {cycles:>10,d} {seconds:>9.2f} {rate:>13,.0f} "
            f"{rate / base:>8.1f}x  {note}")


def main() -> None:
    params = bulk.default_parameters()
    t0 = time.perf_counter()
    bulk.build_harness(params)                         # built (or reused) before timing
    build_reuse = time.perf_counter() - t0

    icarus = _cocotb("icarus", COCOTB_IMAGES)
    vl_cocotb = _cocotb("verilator", COCOTB_IMAGES)
    small = bulk.run(images=COCOTB_IMAGES)
    t0 = time.perf_counter()
    full = bulk.run(images=ALL_IMAGES)
    full_wall = time.perf_counter() - t0
    assert small.rtl_pred == icarus.rtl_pred == vl_cocotb.rtl_pred

    base = icarus.total_cycles / icarus.sim_seconds
    head = (f"{'simulator':34s} {'images':>6s} {'cycles':>10s} {'seconds':>9s} "
            f"{'cycles/s':>13s} {'vs Icarus':>9s}")
    print(f"\ndigits CNN, 8x8 engine (all outputs checked == golden); cycles = compute + "
          f"exposed loading; cocotb rows: qmac_top through cocotbext-axi (make sim), bulk rows: "
          f"the bare qlayer_engine")
    print(head)
    print("-" * len(head))
    print(_row("Icarus + cocotb (baseline)", icarus.images, icarus.total_cycles,
               icarus.sim_seconds, base))
    print(_row("Verilator + cocotb", vl_cocotb.images, vl_cocotb.total_cycles,
               vl_cocotb.sim_seconds, base))
    print(_row("Verilator bulk (harness)", small.images, small.total_cycles,
               small.sim_seconds, base))
    print(_row("Verilator bulk (harness)", full.images, full.total_cycles, full.sim_seconds,
               base, "time in the C++ harness"))
    print(_row("Verilator bulk (whole host run)", full.images, full.total_cycles, full_wall,
               base, "+ im2col, golden model, float model, checks"))
    mism = sum(l.mismatches for l in full.layers)
    ratio = (full.total_cycles / full.sim_seconds) / base
    print(f"\nbulk vs Icarus + cocotb: {ratio:.0f}x -> "
          f"{'meets' if ratio >= 20 else 'MISSES'} the >= 20x target")
    print(f"bulk, {full.images} images: {mism} output mismatches, RTL == golden "
          f"{sum(a == b for a, b in zip(full.rtl_pred, full.golden_pred))}/{full.images}")

    # as a user runs it: a fresh process, harness build reused
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tb.run", "--sim", "verilator", "--images",
                           str(ALL_IMAGES)], cwd=kit.REPO_ROOT, capture_output=True, text=True)
    cli_wall = time.perf_counter() - t0
    ok = proc.returncode == 0 and "output mismatches, all layers  0" in proc.stdout
    print(f"'python -m tb.run --sim verilator --images {ALL_IMAGES}' (make sim SIM=verilator "
          f"IMAGES={ALL_IMAGES}): {cli_wall:.1f} s wall, exit {proc.returncode}, "
          f"{'0 mismatches' if ok else 'FAILED'} -> "
          f"{'meets' if ok and cli_wall < 60 else 'MISSES'} the < 60 s target")

    # the harness build from scratch (what the first run pays once)
    fresh = kit.SIM_DIR / "build" / "bench-bulk-fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    t0 = time.perf_counter()
    bulk.build_harness(params, build_dir=fresh)
    print(f"harness build from scratch: {time.perf_counter() - t0:.1f} s wall "
          f"(reused: {build_reuse:.1f} s)")
    shutil.rmtree(fresh, ignore_errors=True)
    imported_model()


MODEL = kit.REPO_ROOT / "models" / "tflite" / "mobilenetv2_style.tflite"
MODEL_IMAGES = 64          # all stored test images of the model
ICARUS_MODEL_IMAGES = 1    # Icarus + cocotb: one image, extrapolated to MODEL_IMAGES


def imported_model() -> None:
    """The MobileNetV2-style imported model on the three units (conv / FC on
    ``qlayer_engine``, depthwise / MEAN on ``window_engine``, ADD on ``eltwise_engine``):
    Icarus + cocotb (``tb/test_units_network.py``, the baseline) on one image, Verilator
    bulk (``tb/bulk_units.py``) on the same image and on all 64, and the 64 as a user runs
    them (``make sim SIM=verilator MODEL=... IMAGES=64``: a fresh process, builds reused).
    Rates are cycles of all three units (compute + load) over the time in the simulator.
    """
    from tb import bulk_units, test_units_network
    for unit in bulk_units.UNITS:                      # builds before anything is timed
        bulk_units.build_unit(unit)
    bulk.build_harness(bulk_units.GEMM_PARAMETERS)
    saved = os.environ.get("QMAC_SIM")
    os.environ["QMAC_SIM"] = "icarus"
    try:
        ica = test_units_network.run(MODEL, ICARUS_MODEL_IMAGES, quiet=True)
    finally:
        if saved is None:
            os.environ.pop("QMAC_SIM", None)
        else:
            os.environ["QMAC_SIM"] = saved
    one = bulk_units.run_model(MODEL, ICARUS_MODEL_IMAGES)
    t0 = time.perf_counter()
    full = bulk_units.run_model(MODEL, MODEL_IMAGES)
    full_wall = time.perf_counter() - t0
    assert one["rtl_pred"] == ica["rtl_pred"]
    base = ica["cycles"] / ica["sim_seconds"]
    head = (f"{'simulator':34s} {'images':>6s} {'cycles':>10s} {'seconds':>9s} "
            f"{'cycles/s':>13s} {'vs Icarus':>9s}")
    print(f"\n{ica['network']} (imported TFLite), three units (qlayer_engine 8x8, window_engine, "
          f"eltwise_engine; all outputs checked == golden); cycles = all units, compute + load")
    print(head)
    print("-" * len(head))
    print(_row("Icarus + cocotb (baseline)", ica["images"], ica["cycles"], ica["sim_seconds"], base))
    ext = ica["sim_seconds"] * MODEL_IMAGES / ica["images"]
    print(f"{'  extrapolated to ' + str(MODEL_IMAGES) + ' images':34s} {MODEL_IMAGES:>6d} "
          f"{'':>10s} {ext:>9.1f}  (x {MODEL_IMAGES} / {ica['images']}, not run)")
    print(_row("Verilator bulk (harnesses)", one["images"], one["cycles"], one["sim_seconds"], base))
    print(_row("Verilator bulk (harnesses)", full["images"], full["cycles"], full["sim_seconds"],
               base, f"time in the C++ harnesses ({full['parts']} worker processes, summed)"))
    print(_row("Verilator bulk (whole host run)", full["images"], full["cycles"], full_wall, base,
               "wall; + golden model, checks"))
    mism = sum(l["mismatches"] for l in full["layers"])
    print(f"bulk, {full['images']} images: {mism} output mismatches, network output == golden: "
          f"{full['output_equal']}")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tb.run", "--sim", "verilator", "--model",
                           str(MODEL.relative_to(kit.REPO_ROOT)), "--images", str(MODEL_IMAGES)],
                          cwd=kit.REPO_ROOT, capture_output=True, text=True)
    cli_wall = time.perf_counter() - t0
    ok = proc.returncode == 0 and "output mismatches, all layers: 0" in proc.stdout
    print(f"'make sim SIM=verilator MODEL={MODEL.relative_to(kit.REPO_ROOT)} IMAGES={MODEL_IMAGES}': "
          f"{cli_wall:.1f} s wall, exit {proc.returncode}, {'0 mismatches' if ok else 'FAILED'} -> "
          f"{'meets' if ok and cli_wall < 120 else 'MISSES'} the < 2 min target "
          f"(Icarus + cocotb extrapolated: {ext:.0f} s in the simulator alone)")


if __name__ == "__main__":
    main()
