import pytest

from shared.config import ConfigurationError, Settings, generate_secret


def test_the_embedded_default_needs_no_configuration_and_keeps_its_secrets(tmp_path):
    first = Settings.from_env({"KETEN_VAR_DIR": str(tmp_path)})
    again = Settings.from_env({"KETEN_VAR_DIR": str(tmp_path)})
    assert first.embedded_broker and not first.uses_postgres
    assert first.master_key == again.master_key and len(first.master_key) == 32
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_secrets():
    with pytest.raises(ConfigurationError, match="KETEN_MASTER_KEY"):
        Settings.from_env({"DATABASE_URL": "postgresql://db/keten", "AMQP_URI": "amqp://broker"})


def test_production_reads_everything_from_the_environment():
    env = {
        "DATABASE_URL": "postgresql://db/keten",
        "DATABASE_SCHEMA": "keten",
        "AMQP_URI": "amqp://broker",
        "KETEN_MASTER_KEY": generate_secret(),
        "KETEN_PSEUDONYM_SECRET": generate_secret(),
    }
    settings = Settings.from_env(env)
    assert settings.uses_postgres and not settings.embedded_broker
    assert settings.database_schema == "keten"


def test_a_short_secret_is_refused_without_printing_it():
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({"DATABASE_URL": "sqlite://memory", "KETEN_MASTER_KEY": "c2hvcnQ="})
    assert "c2hvcnQ" not in str(error.value)
