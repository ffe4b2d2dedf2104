"""The driver registry against real installed entry points and throwaway plug-in packages.

A third-party plug-in is simulated the way an installed wheel looks on disk: a
``*.dist-info`` directory with ``METADATA`` and ``entry_points.txt`` next to its module, in
a directory put on ``sys.path``. ``importlib.metadata`` finds it exactly as it would a
pip-installed package, without touching the real environment.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast

import pytest
from structlog.testing import capture_logs

from stratum_client.asic.base import AsicDriver
from stratum_client.asic.registry import (
    ENTRY_POINT_GROUP,
    available_drivers,
    load_driver,
    register_driver,
    unregister_driver,
)
from stratum_client.errors import DriverError, DriverImportError, DriverNotFoundError

BUILTINS = {
    "bm1366": "stratum_client_bm13xx.bm1366:Bm1366Driver",
    "bm1368": "stratum_client_bm13xx.bm1368:Bm1368Driver",
    "bm1370": "stratum_client_bm13xx.bm1370:Bm1370Driver",
    "bm1397": "stratum_client_bm13xx.bm1397:Bm1397Driver",
}

DRIVER_MODULE = """\
from stratum_client.asic.base import AsicDriver


class DemoDriver(AsicDriver):
    model = "DEMO1"


class NotADriver:
    pass
"""

PluginMaker = Callable[..., None]


class _FakeDriver(AsicDriver):
    model = "FAKE"


# Abstract on purpose: the registry only checks the class, it never instantiates it.
FakeDriver = cast("type[AsicDriver]", _FakeDriver)


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginMaker]:
    """Return ``make(dist, entries, modules)`` that 'installs' a package into tmp_path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, entries: dict[str, str], modules: dict[str, str] | None = None) -> None:
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in entries.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in (modules or {}).items():
            (site / f"{module}.py").write_text(source)
            created.append(module)

    yield make
    for module in created:
        sys.modules.pop(module, None)


@pytest.fixture
def injected() -> Iterator[list[str]]:
    """Names registered in-process during the test, unregistered afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        unregister_driver(name)


def test_builtins_are_listed_from_the_installed_entry_points() -> None:
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert BUILTINS.items() <= installed.items()
    assert BUILTINS.items() <= available_drivers().items()


def test_listing_is_sorted_and_imports_nothing(make_plugin: PluginMaker) -> None:
    make_plugin("sc-demo", {"demo": "sc_test_demo:DemoDriver"}, {"sc_test_demo": DRIVER_MODULE})
    names = list(available_drivers())
    assert names == sorted(names)
    assert "demo" in names
    assert "sc_test_demo" not in sys.modules


def test_third_party_plugin_is_loaded_lazily(make_plugin: PluginMaker) -> None:
    make_plugin("sc-demo", {"demo": "sc_test_demo:DemoDriver"}, {"sc_test_demo": DRIVER_MODULE})
    assert available_drivers()["demo"] == "sc_test_demo:DemoDriver"
    assert "sc_test_demo" not in sys.modules
    cls = load_driver("demo")
    assert "sc_test_demo" in sys.modules
    assert cls.__name__ == "DemoDriver"
    assert issubclass(cls, AsicDriver)
    assert load_driver("DEMO") is cls  # names are case-insensitive


def test_unknown_name_lists_the_installed_drivers() -> None:
    with pytest.raises(DriverNotFoundError) as caught:
        load_driver("bm9999")
    message = str(caught.value)
    assert "'bm9999'" in message
    assert "bm1366, bm1368, bm1370, bm1397" in message
    assert set(BUILTINS) <= set(caught.value.installed)


def test_a_failing_import_is_wrapped(make_plugin: PluginMaker) -> None:
    broken = "raise RuntimeError('no libusb here')\n"
    make_plugin("sc-broken", {"broken": "sc_test_broken:Driver"}, {"sc_test_broken": broken})
    with pytest.raises(DriverImportError) as caught:
        load_driver("broken")
    message = str(caught.value)
    assert "'broken'" in message
    assert "sc_test_broken:Driver" in message
    assert "RuntimeError: no libusb here" in message
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_missing_module_or_attribute_is_an_import_error(make_plugin: PluginMaker) -> None:
    make_plugin(
        "sc-missing",
        {"ghost": "sc_test_nowhere:Driver", "typo": "sc_test_demo:DemoDriverr"},
        {"sc_test_demo": DRIVER_MODULE},
    )
    with pytest.raises(DriverImportError, match="ModuleNotFoundError"):
        load_driver("ghost")
    with pytest.raises(DriverImportError, match="AttributeError"):
        load_driver("typo")


def test_a_target_that_is_not_a_driver_is_rejected(make_plugin: PluginMaker) -> None:
    make_plugin("sc-odd", {"odd": "sc_test_demo:NotADriver"}, {"sc_test_demo": DRIVER_MODULE})
    with pytest.raises(DriverImportError, match=r"'odd' \(sc_test_demo:NotADriver\) is not a"):
        load_driver("odd")


def test_in_process_registration(injected: list[str]) -> None:
    register_driver("fake", FakeDriver)
    injected.append("fake")
    assert available_drivers()["fake"] == f"{__name__}:_FakeDriver"
    assert load_driver("fake") is FakeDriver
    unregister_driver("fake")
    assert "fake" not in available_drivers()


def test_registration_refuses_a_taken_name_unless_replacing(injected: list[str]) -> None:
    taken = r"'bm1366' is taken by stratum_client_bm13xx\.bm1366:Bm1366Driver"
    with pytest.raises(ValueError, match=taken):
        register_driver("bm1366", FakeDriver)
    register_driver("BM1366", FakeDriver, replace=True)
    injected.append("bm1366")
    assert load_driver("bm1366") is FakeDriver


def test_registration_rejects_a_non_driver() -> None:
    with pytest.raises(DriverImportError, match="not a subclass"):
        register_driver("nope", dict)  # type: ignore[arg-type]


def test_a_class_is_accepted_where_a_name_is_expected() -> None:
    assert load_driver(FakeDriver) is FakeDriver
    with pytest.raises(DriverImportError):
        load_driver(int)  # type: ignore[arg-type]


def test_a_third_party_cannot_shadow_a_builtin(make_plugin: PluginMaker) -> None:
    make_plugin("sc-evil", {"bm1366": "sc_test_evil:DemoDriver"}, {"sc_test_evil": DRIVER_MODULE})
    with capture_logs() as logs:
        assert available_drivers()["bm1366"] == BUILTINS["bm1366"]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["package"] == "sc-evil"
    assert warnings[0]["target"] == "sc_test_evil:DemoDriver"
    assert warnings[0]["kept"] == BUILTINS["bm1366"]
    with contextlib.suppress(DriverImportError):  # the built-in may not be written yet
        load_driver("bm1366")
    assert "sc_test_evil" not in sys.modules


def test_two_third_parties_claiming_one_name_is_an_error(make_plugin: PluginMaker) -> None:
    make_plugin("sc-one", {"twin": "sc_test_demo:DemoDriver"}, {"sc_test_demo": DRIVER_MODULE})
    make_plugin("sc-two", {"twin": "sc_test_other:DemoDriver"}, {"sc_test_other": DRIVER_MODULE})
    assert "twin" not in available_drivers()
    with pytest.raises(DriverError, match="claimed by several packages") as caught:
        load_driver("twin")
    assert not isinstance(caught.value, DriverNotFoundError)
    assert "sc-one (sc_test_demo:DemoDriver)" in str(caught.value)
    assert "sc-two (sc_test_other:DemoDriver)" in str(caught.value)
