from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import ConfigError
from connectors.settings import load_settings


def test_defaults_come_from_the_config_folder(config_dir: Path) -> None:
    settings = load_settings()
    assert settings.run.batch_size == 5000
    assert settings.config_path(settings.source.path) == config_dir / "data" / "sample_signups.csv"
    assert settings.store_url.endswith("/home/leadq.db")


def test_environment_overrides_nested_keys_with_types(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "250")
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PRESET", "pdl")
    monkeypatch.setenv("LEADQ__PREPARE__ROLE_ACCOUNTS", '["ops"]')
    settings = load_settings()
    assert settings.run.batch_size == 250
    assert settings.enrichment.reference.preset == "pdl"
    assert settings.prepare.role_accounts == ["ops"]


def test_bad_override_names_the_variable_and_key(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "lots")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "LEADQ__RUN__BATCH_SIZE" in str(err.value)
    assert "run.batch_size" in str(err.value)
    assert "lots" in str(err.value)


def test_bad_file_value_names_the_file_and_key(config_dir: Path) -> None:
    path = config_dir / "settings.toml"
    path.write_text(path.read_text().replace('kind = "file"', 'kind = "ftp"'))
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert str(path) in message and "source.kind" in message and "ftp" in message
    assert "\n" not in message


def test_unknown_key_is_refused(config_dir: Path) -> None:
    path = config_dir / "settings.toml"
    path.write_text(path.read_text().replace("[run]", "[run]\nbatch_sise = 10"))
    with pytest.raises(ConfigError, match=r"run\.batch_sise"):
        load_settings()


def test_broken_toml_names_the_file(config_dir: Path) -> None:
    (config_dir / "settings.toml").write_text("[run\nbatch_size = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_missing_config_folder_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="LEADQ_CONFIG_DIR"):
        load_settings()
