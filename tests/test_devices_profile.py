"""Device profiles: the packaged ones load, every number has a source, bad files name field and line."""

import pytest

from wearprune.devices import list_devices, load_device
from wearprune.devices.profile import load_profile_file
from wearprune.errors import ConfigError

from .test_cli import assert_clean_error, wearprune

REQUIRED = {"nrf52840", "nrf5340", "apollo4plus", "stm32l4r5", "stm32u575", "esp32s3", "alif-e3-u55", "watch-ap"}


def test_packaged_profiles_cover_the_wearable_parts_with_sources():
    devices = {d.name: d for d in list_devices()}
    assert REQUIRED <= set(devices)
    for d in devices.values():
        for field in ("clock_mhz", "sram_kb", "flash_kb", "cycles_per_mac", "active_mw", "sleep_uw"):
            assert d.sources.get(field), (d.name, field)
    nrf = devices["nrf52840"]
    assert (nrf.clock_mhz, nrf.sram_kb, nrf.flash_kb) == (64, 256, 1024)


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown device 'nrf9999'.*nrf52840"):
        load_device("nrf9999")


GOOD = (REQUIRED and open(list_devices()[0].path).read())


def _write(tmp_path, text):
    p = tmp_path / "board.yaml"
    p.write_text(text)
    return p


def test_malformed_profile_names_the_field_and_line(tmp_path):
    text = GOOD.replace("clock_mhz: ", "clock_mhz: fast #", 1)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("clock_mhz"))
    with pytest.raises(ConfigError, match=rf"board.yaml line {line}: field 'clock_mhz' must be a positive number"):
        load_profile_file(_write(tmp_path, text))


def test_profile_without_sources_is_refused(tmp_path):
    text = GOOD[: GOOD.index("sources:")]
    with pytest.raises(ConfigError, match="sources.*every number needs its source"):
        load_profile_file(_write(tmp_path, text))


def test_invalid_yaml_and_unknown_field(tmp_path):
    with pytest.raises(ConfigError, match="line 2 is not valid YAML"):
        load_profile_file(_write(tmp_path, "name: x\n  bad: [\n"))
    with pytest.raises(ConfigError, match="field 'clock_ghz' is not a profile field"):
        load_profile_file(_write(tmp_path, GOOD + "clock_ghz: 1\n"))


def test_user_profile_by_path_and_cli(tmp_path):
    p = _write(tmp_path, GOOD.replace(f"name: {list_devices()[0].name}", "name: myband"))
    assert load_device(str(p)).name == "myband"
    res = wearprune("devices")
    assert res.returncode == 0 and "nrf52840" in res.stdout and "stm32u575" in res.stdout
    assert_clean_error(wearprune("report", str(tmp_path), "--device", "nope"), "unknown device 'nope'")
