"""Checks every entry point shares: names to look things up by, numbers, paging bounds."""

from __future__ import annotations

from typing import Any

from traitlets import TraitError

from ..config import LaunchConfig
from ..errors import NotFoundError, ParameterError, shown

#: Most attempts a queue may allow (the column is a 32-bit integer in PostgreSQL).
MAX_ATTEMPTS = 1000
#: Beyond any store's row count; bigger limits and offsets are cut to it (SQL takes 64 bits).
MAX_ROWS = 2**62


def max_attempts(value: Any) -> int:
    """A queue's ``max_attempts``: an integer from 1 to MAX_ATTEMPTS."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"max_attempts must be an integer, got {shown(value)}")
    try:
        number = int(value)
    except ValueError:
        raise ParameterError(f"max_attempts must be an integer, got {shown(value)}") from None
    if not 1 <= number <= MAX_ATTEMPTS:
        raise ParameterError(f"max_attempts must be at least 1 and at most {MAX_ATTEMPTS}, "
                             f"got {shown(number)}")
    return number


#: Largest queue concurrency limit (the column is a 32-bit integer in PostgreSQL).
MAX_CONCURRENCY = 1_000_000


def concurrency(value: Any) -> int | None:
    """A queue's ``concurrency``: None or 0 (no limit), else an integer from 1 to
    MAX_CONCURRENCY (how many of its items may be leased or running at once)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"concurrency must be an integer, got {shown(value)}")
    try:
        number = int(value)
    except ValueError:
        raise ParameterError(f"concurrency must be an integer, got {shown(value)}") from None
    if not 0 <= number <= MAX_CONCURRENCY:
        raise ParameterError(f"concurrency must be between 0 (no limit) and {MAX_CONCURRENCY}, "
                             f"got {shown(number)}")
    return number or None


def item_ids(value: Any, what: str = "after") -> list[str]:
    """A list of item ids (one id alone counts as a list of one), duplicates dropped. An
    Item handle stands for its id: ``submit(..., after=[a])`` with ``a = submit(...)``."""
    from .handles import Item  # handles imports this module

    if value is None:
        return []
    if isinstance(value, (str, Item)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ParameterError(f"{what} must be a list of item ids, got {shown(value)}")
    ids = []
    for entry in value:
        if isinstance(entry, Item):
            entry = entry.id
        if not isinstance(entry, str):
            raise ParameterError(f"{what} must be a list of item ids, got {shown(entry)} in it")
        if not entry.strip():  # `--after "$A"` with A unset
            raise ParameterError(f"--{what}: an item id is empty; give the id of an existing "
                                 "item (see `jupyter launch items`)")
        if "," in entry:
            raise ParameterError(f"--{what} {entry!r}: one item id each; repeat the option "
                                 f"for several (--{what} A --{what} B)")
        ids.append(key(entry, "item"))
    return list(dict.fromkeys(ids))


def key(value: Any, what: str) -> str:
    """``value`` to look a job, queue or item up by; text no store can hold names nothing."""
    if isinstance(value, str) and "\0" not in value:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate
            pass
        else:
            return value
    hint = ("list items with `jupyter launch items`" if what == "item"
            else f"{what} names use letters, digits, '-', '_' and '.'")
    raise NotFoundError(f"{what} {shown(value)} does not exist; {hint}")


def positive_timeout(timeout: Any) -> float | None:
    """A timeout in seconds: None, or a finite positive number."""
    if timeout is None:
        return None
    try:
        value = float(timeout)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(
            f"timeout must be a positive number of seconds, got {shown(timeout)}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ParameterError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return value


def bounds(limit: Any, offset: Any, *, max_limit: int | None = None) -> tuple[int | None, int]:
    """The one paging rule: ``limit`` None (no limit) or an integer >= 0, at most
    ``max_limit`` when given; ``offset`` an integer >= 0. Both are cut to MAX_ROWS."""
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ParameterError(f"limit must be an integer, got {shown(limit)}")
        if limit < 0 or (max_limit is not None and limit > max_limit):
            top = f" and {max_limit}" if max_limit is not None else " or more"
            raise ParameterError(f"limit must be between 0{top}, got {shown(limit)}"
                                 if max_limit is not None else
                                 f"limit must be 0 or more, got {shown(limit)}")
        limit = min(limit, MAX_ROWS)
    if offset is None:
        offset = 0
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ParameterError(f"offset must be an integer, got {shown(offset)}")
    if offset < 0:
        raise ParameterError(f"offset must be 0 or more, got {shown(offset)}")
    return limit, min(offset, MAX_ROWS)


def retention(keep_days: Any, keep_last: Any) -> tuple[float | None, int | None]:
    """``store vacuum``'s rules: ``keep_days`` a number of days >= 0, ``keep_last`` an
    integer >= 0, at least one of them given (vacuum without a rule would keep nothing)."""
    if keep_days is None and keep_last is None:
        raise ParameterError("store vacuum needs a rule: --keep-days N (keep items that "
                             "finished in the last N days) and/or --keep-last N (keep each "
                             "queue's newest N finished items)")
    if keep_days is not None:
        if isinstance(keep_days, bool) or not isinstance(keep_days, (int, float)):
            raise ParameterError(f"keep_days must be a number of days, got {shown(keep_days)}")
        if not 0 <= keep_days < float("inf"):
            raise ParameterError(f"keep_days must be 0 or more days, got {shown(keep_days)}")
        keep_days = float(keep_days)
    if keep_last is not None:
        if isinstance(keep_last, bool) or not isinstance(keep_last, int):
            raise ParameterError(f"keep_last must be an integer, got {shown(keep_last)}")
        if keep_last < 0:
            raise ParameterError(f"keep_last must be 0 or more, got {shown(keep_last)}")
    return keep_days, keep_last


class SettingError(ParameterError, TraitError):
    """A bad LaunchConfig setting: a ParameterError the doors print (exit 2), and still the
    TraitError traitlets raises for it, for code that catches that."""


def settings(**overrides: Any) -> LaunchConfig:
    """``LaunchConfig.load(**overrides)``, where a bad setting (``LAUNCH_JUPYTER_KERNEL_POOL_SIZE
    =-1``, a config file's ``lease_ttl = "x"``) is a SettingError the doors print and exit 2
    on, not a traceback."""
    try:
        return LaunchConfig.load(**overrides)
    except TraitError as err:
        raise SettingError(f"bad setting: {err}") from None


__all__ = ["MAX_ATTEMPTS", "MAX_CONCURRENCY", "MAX_ROWS", "bounds", "concurrency", "item_ids",
           "key", "max_attempts", "positive_timeout", "retention", "settings", "SettingError"]
