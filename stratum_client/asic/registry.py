"""Find chip drivers by name: every driver is an entry point, imported only when chosen.

Built-in and third-party drivers are registered the same way, as entry points in the
``stratum_client.drivers`` group whose value is ``"module:Class"`` (see
``docs/writing-a-driver.md``). Listing reads package metadata only; a driver's module is
imported when it is loaded, so a broken or not-yet-written driver never breaks the listing
or any other driver.

Names are matched case-insensitively. When two entry points claim one name:

* a built-in (an entry point of a distribution this project ships, such as
  ``stratum-client-bm13xx`` from ``drivers/``) always wins, and the
  other is ignored with a warning naming its package. Installing an unrelated package must
  not silently swap the code that drives the hardware, yet must not stop the daemon either;
* between two third-party packages there is no sane winner: the name is left out of the
  listing and :func:`load_driver` raises :class:`~stratum_client.errors.DriverError` naming
  both, until one is uninstalled.

:func:`register_driver` injects a class in-process (tests, embedding); it refuses a taken
name unless ``replace=True`` and then wins over entry points.

Questions about chips rather than drivers go to every installed driver class in turn:
:func:`chip_facts` (a model's published figures, for the power model and the APIs) and
:func:`detect_chain` (who answers on a port). A driver that fails to import is skipped.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points

import structlog

from stratum_client.asic.base import AsicDriver
from stratum_client.asic.detect import ProbeResult
from stratum_client.asic.facts import ChipFacts
from stratum_client.errors import DriverError, DriverImportError, DriverNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_drivers",
    "chip_facts",
    "detect_chain",
    "installed_drivers",
    "load_driver",
    "register_driver",
    "unregister_driver",
]

ENTRY_POINT_GROUP = "stratum_client.drivers"
_BUILTIN_DISTRIBUTIONS = frozenset({"stratum-client", "stratum-client-bm13xx"})

_log = structlog.get_logger(__name__)
_injected: dict[str, type[AsicDriver]] = {}
_warned: set[tuple[str, str]] = set()
"""(name, target) pairs already warned about, so a listing per request does not spam."""


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _distribution(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "<unknown>"


def _is_builtin(ep: EntryPoint) -> bool:
    return _canonical(_distribution(ep)) in _BUILTIN_DISTRIBUTIONS


def _target(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _warn_once(name: str, ep: EntryPoint, event: str, **context: str) -> None:
    if (name, ep.value) not in _warned:
        _warned.add((name, ep.value))
        _log.warning(event, driver=name, target=ep.value, package=_distribution(ep), **context)


def _pick(name: str, candidates: list[EntryPoint]) -> EntryPoint | None:
    """The entry point that owns ``name``, or None when third parties clash over it."""
    unique = list({ep.value: ep for ep in candidates}.values())
    if len(unique) == 1:
        return unique[0]
    builtin = next((ep for ep in unique if _is_builtin(ep)), None)
    for ep in unique:
        if builtin is None:
            _warn_once(name, ep, "ambiguous driver name, not loadable")
        elif ep is not builtin:
            _warn_once(
                name, ep, "entry point shadows a built-in driver, ignored", kept=builtin.value
            )
    return builtin


def _scan() -> tuple[dict[str, EntryPoint], dict[str, list[EntryPoint]]]:
    """Entry points by lower-case name: the owners, and the unresolvable clashes."""
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        by_name.setdefault(ep.name.lower(), []).append(ep)
    owners: dict[str, EntryPoint] = {}
    clashes: dict[str, list[EntryPoint]] = {}
    for name, candidates in by_name.items():
        owner = _pick(name, candidates)
        if owner is None:
            clashes[name] = candidates
        else:
            owners[name] = owner
    return owners, clashes


def available_drivers() -> dict[str, str]:
    """Installed drivers as ``name → "module:Class"``, sorted by name; imports nothing."""
    owners, _ = _scan()
    found = {name: ep.value for name, ep in owners.items()}
    found.update({name: _target(cls) for name, cls in _injected.items()})
    return dict(sorted(found.items()))


def _checked(obj: object, name: str, target: str) -> type[AsicDriver]:
    if isinstance(obj, type) and issubclass(obj, AsicDriver):
        return obj
    raise DriverImportError(
        f"driver {name!r} ({target}) is not a subclass of "
        f"stratum_client.asic.base.AsicDriver: {obj!r}"
    )


def load_driver(name: str | type[AsicDriver]) -> type[AsicDriver]:
    """Return the driver class for ``name``, importing its module now.

    A class may be passed instead of a name (tests, embedding); it is checked and returned.
    """
    if isinstance(name, type):
        return _checked(name, name.__qualname__, _target(name))
    key = name.lower()
    if key in _injected:
        return _injected[key]
    owners, clashes = _scan()
    if key in clashes:
        claims = ", ".join(f"{_distribution(ep)} ({ep.value})" for ep in clashes[key])
        raise DriverError(f"driver name {name!r} is claimed by several packages: {claims}")
    ep = owners.get(key)
    if ep is None:
        raise DriverNotFoundError(name, list(available_drivers()))
    try:
        obj = ep.load()
    except Exception as exc:  # an import can fail in any way; the message keeps the cause
        raise DriverImportError(
            f"driver {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return _checked(obj, name, ep.value)


def register_driver(name: str, cls: type[AsicDriver], *, replace: bool = False) -> None:
    """Make ``cls`` loadable as ``name`` in this process, ahead of any entry point."""
    driver = _checked(cls, name, _target(cls) if isinstance(cls, type) else repr(cls))
    key = name.lower()
    taken = available_drivers().get(key)
    if taken is not None and not replace:
        raise ValueError(f"driver name {name!r} is taken by {taken}; pass replace=True")
    _injected[key] = driver


def unregister_driver(name: str) -> None:
    """Undo :func:`register_driver` (entry points are untouched); unknown names are ignored."""
    _injected.pop(name.lower(), None)


def installed_drivers() -> list[type[AsicDriver]]:
    """Every driver class that imports, in name order (a broken one is logged and skipped)."""
    classes: list[type[AsicDriver]] = []
    for name in available_drivers():
        try:
            cls = load_driver(name)
        except DriverError as exc:
            _log.debug("driver skipped", driver=name, error=str(exc))
            continue
        if cls not in classes:
            classes.append(cls)
    return classes


_facts: dict[str, ChipFacts] = {}
"""Facts found by model name; misses are asked again (a plug-in may arrive later)."""


def chip_facts(model: str) -> ChipFacts | None:
    """The published figures of chip ``model`` (case-insensitive), from its driver class."""
    key = model.upper()
    if key not in _facts:
        for cls in installed_drivers():
            if cls.facts is not None:
                _facts.setdefault(cls.facts.model.upper(), cls.facts)
    return _facts.get(key)


async def detect_chain(port: str, *, timeout: float = 1.0) -> ProbeResult:  # noqa: ASYNC109 - a reply deadline
    """Ask each installed driver family who answers on ``port``; the first finding wins."""
    asked: set[object] = {AsicDriver.detect.__func__}  # type: ignore[attr-defined]
    for cls in installed_drivers():
        method = cls.detect.__func__  # type: ignore[attr-defined]
        if method in asked:
            continue  # the base's "cannot tell", or a family already asked
        asked.add(method)
        found = await cls.detect(port, timeout=timeout)
        if found is not None and found.chip_count:
            return found
    return ProbeResult(port, ())
