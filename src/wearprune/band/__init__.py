"""A health band: several pruned models on one chip (plan, policy, replay, C bundle).

    import wearprune as wp
    doc = wp.band_plan("examples/band.yaml", "band/")       # band.json, report.html, per-task runs
    wp.band_replay("band/", ["f2"])                          # real recordings through TFLite Micro
    wp.band_export("band/")                                  # band.h + band_main.c
"""

from .bundle import bundle
from .plan import plan
from .replay import replay
from .spec import BandSpec, load_band_spec

__all__ = ["BandSpec", "bundle", "load_band_spec", "plan", "replay"]
