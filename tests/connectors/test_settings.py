from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import ConfigError
from connectors.settings import load_settings


def test_defaults_come_from_the_config_folder(config_dir: Path) -> None:
    settings = load_settings()
    assert settings.run.batch_size == 20000
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


def test_a_config_folder_overrides_only_what_it_says_every_default_coming_from_leadqs_own_file(
    config_dir: Path,
) -> None:
    (config_dir / "settings.toml").write_text(
        '[run]\nbatch_size = 7\n\n[crm.hubspot.contact_properties]\nscore = "my_score"\n'
    )
    settings = load_settings()
    assert settings.run.batch_size == 7 and settings.run.schedule_cron == "*/15 * * * *"
    assert settings.crm.hubspot.contact_properties["score"] == "my_score"
    assert settings.crm.hubspot.contact_properties["email"] == "email"  # a table merges key by key
    assert settings.shadow.qualified_statuses[0] == "Working"


def test_every_default_lives_in_settings_toml_alone() -> None:
    """No settings model carries a default of its own: config/settings.toml is the one source."""
    from pydantic import BaseModel

    from connectors.settings import Settings

    def defaults(model: type[BaseModel], where: str) -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            if name in ("config_dir", "home"):
                continue
            if not field.is_required():
                found.append(f"{where}{name}")
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                found += defaults(field.annotation, f"{where}{name}.")
        return found

    assert defaults(Settings, "") == []
