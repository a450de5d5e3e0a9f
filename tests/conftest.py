import os

import pytest


# Keep tests off the user's dataset cache: each session gets its own.
@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # ...but the TFLite Micro build for the emulated Cortex-M (minutes) is shared, where the user keeps it
    from wearprune.firmware import cache_dir

    os.environ.setdefault("WEARPRUNE_FIRMWARE_CACHE", str(cache_dir()))
    if "WEARPRUNE_CACHE" not in os.environ:
        os.environ["WEARPRUNE_CACHE"] = str(tmp_path_factory.mktemp("wp-cache"))
    yield
