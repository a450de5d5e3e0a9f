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


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo hacked']", "!!python/name:os.system",
                                 "!!python/object:collections.OrderedDict {}"])
def test_python_tags_are_refused_with_file_and_line(tmp_path, tag):
    text = GOOD.replace("title: ", f"title: {tag} #", 1)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("title"))
    with pytest.raises(ConfigError) as exc:
        load_profile_file(_write(tmp_path, text))
    msg = str(exc.value)
    assert "\n" not in msg and "board.yaml" in msg and f"line {line}" in msg and "!!python" in msg, msg


@pytest.mark.parametrize("text, fragment", [
    ("- a\n- b\n", "must be a mapping"),
    ("just text\n", "must be a mapping"),
    ("", "must be a mapping"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("name: x\nname: [1\n", "not valid YAML"),
    ("? [a, b]\n: 1\nname: x\n", "board.yaml"),
    ("1: 2\nname: x\n", "board.yaml"),
    ("name: &a x\ntitle: *b\n", "not valid YAML"),
    ("name: !custom x\n", "board.yaml"),
])
def test_odd_documents_are_one_clear_line(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as exc:
        load_profile_file(_write(tmp_path, text))
    assert "\n" not in str(exc.value) and fragment in str(exc.value)


def test_unreadable_profile(tmp_path):
    p = tmp_path / "board.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read device profile .*board.yaml"):
        load_profile_file(p)
    d = tmp_path / "dir.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match="cannot read device profile .*dir.yaml"):
        load_profile_file(d)


def test_python_tag_through_the_cli(tmp_path):
    p = _write(tmp_path, GOOD.replace("title: ", "title: !!python/object/apply:os.system ['echo hacked'] #", 1))
    assert_clean_error(wearprune("report", str(tmp_path), "--device", str(p)), "board.yaml", "!!python")
