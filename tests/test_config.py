"""Configuration precedence: --store > LAUNCH_JUPYTER_STORE > config file > default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from launch_jupyter.config import LaunchConfig


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("LAUNCH_JUPYTER_STORE", "LAUNCH_JUPYTER_DATA_DIR", "LAUNCH_JUPYTER_LEASE_TTL",
                "LAUNCH_JUPYTER_KERNEL_POOL_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", "")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "0")
    (tmp_path / "config").mkdir()
    return tmp_path


def test_default_store_is_sqlite_in_the_jupyter_data_dir(isolated: Path) -> None:
    config = LaunchConfig.load()
    assert config.store == f"sqlite:///{isolated}/data/launch/launch.db"
    assert config.lease_ttl == 30.0


def test_config_file_then_environment_then_argument(isolated: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / "config" / "jupyter_launch_config.json").write_text(json.dumps(
        {"LaunchConfig": {"store": "sqlite:////from/file.db", "lease_ttl": 12}}))
    assert LaunchConfig.load().store == "sqlite:////from/file.db"
    assert LaunchConfig.load().lease_ttl == 12
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", "sqlite:////from/env.db")
    assert LaunchConfig.load().store == "sqlite:////from/env.db"
    assert LaunchConfig.load(store="sqlite:////from/flag.db").store == "sqlite:////from/flag.db"


def test_cli_store_flag_wins(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", f"sqlite:///{isolated}/env.db")
    flag = f"sqlite:///{isolated}/flag.db"
    proc = subprocess.run([sys.executable, "-m", "launch_jupyter.cli", "queue", "create", "x",
                           "--store", flag], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (isolated / "flag.db").exists() and not (isolated / "env.db").exists()


@pytest.mark.parametrize("var, value, says", [
    ("LAUNCH_JUPYTER_KERNEL_POOL_SIZE", "-1", "kernel_pool_size must be 0 (off)"),
    ("LAUNCH_JUPYTER_KERNEL_POOL_SIZE", "two", "expected an int"),
    ("LAUNCH_JUPYTER_LEASE_TTL", "soon", "expected a float"),
    ("LAUNCH_JUPYTER_LEASE_TTL", "0", "lease_ttl must be a positive number"),
    ("LAUNCH_JUPYTER_AUTO_MIGRATE", "maybe", "expected a boolean"),
    ("LAUNCH_JUPYTER_POD_SECURITY", "lax", "expected any of"),
])
def test_a_bad_environment_variable_is_named_not_a_traceback(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    from launch_jupyter.api import Launch
    from launch_jupyter.errors import ParameterError

    monkeypatch.setenv(var, value)
    with pytest.raises(ParameterError, match=f"{var}='{value}': .*{re.escape(says)}"):
        Launch()


def test_a_bad_kernel_pool_size_makes_the_cli_exit_2(isolated: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_KERNEL_POOL_SIZE", "-1")
    proc = subprocess.run([sys.executable, "-m", "launch_jupyter.cli", "agent", "--until-idle"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "LAUNCH_JUPYTER_KERNEL_POOL_SIZE='-1': kernel_pool_size must be 0" in proc.stderr


def test_a_bad_config_file_value_is_a_clear_error(isolated: Path) -> None:
    from launch_jupyter.api import Launch
    from launch_jupyter.errors import ParameterError

    (isolated / "config" / "jupyter_launch_config.json").write_text(json.dumps(
        {"LaunchConfig": {"kernel_pool_size": -2}}))
    with pytest.raises(ParameterError, match="kernel_pool_size must be 0.*jupyter_launch_config"):
        Launch()


def test_a_bad_setting_argument_is_a_parameter_error_and_a_trait_error(isolated: Path) -> None:
    from traitlets import TraitError

    from launch_jupyter.api import Launch
    from launch_jupyter.errors import ParameterError

    for kind in (ParameterError, TraitError):
        with pytest.raises(kind, match="kernel_pool_size must be 0"):
            Launch(kernel_pool_size=-1)
    assert Launch(kernel_pool_size=0).config.kernel_pool_size == 0
