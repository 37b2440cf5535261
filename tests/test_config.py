import pytest

from smsgate import ConfigError, Gateway
from smsgate.config import load_settings, structure_config
from smsgate.default_plugins.loopback import LoopbackConfig


def write(tmp_path, text):
    path = tmp_path / "smsgate.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_toml_is_structured_into_the_plugin_config(tmp_path):
    path = write(tmp_path, '[providers.loopback]\napi_key = "k"\napi_secret = "s3cr3t"\nread_timeout = 2\n')
    gw = Gateway(path, environ={})
    _, config = gw.provider("loopback")
    assert isinstance(config, LoopbackConfig)
    assert config.api_key == "k" and config.read_timeout == 2.0 and config.connect_timeout == 5.0
    assert "s3cr3t" not in repr(config)


def test_smsgate_config_env_names_the_file(tmp_path):
    path = write(tmp_path, '[providers.lb]\nprovider = "loopback"\n')
    settings = load_settings(environ={"SMSGATE_CONFIG": path})
    assert settings.providers["lb"].plugin == "loopback"


def test_env_overrides_each_value(tmp_path):
    path = write(tmp_path, '[providers.lb-test]\nprovider = "loopback"\napi_key = "file"\n')
    env = {"SMSGATE_LB_TEST_API_KEY": "env", "SMSGATE_LB_TEST_VERIFY_TLS": "false",
           "SMSGATE_LB_TEST_MAX_CONCURRENCY": "8", "SMSGATE_LB_TEST_READ_TIMEOUT": "1.5"}
    _, config = Gateway(path, environ=env).provider("lb-test")
    assert (config.api_key, config.verify_tls, config.max_concurrency, config.read_timeout) == ("env", False, 8, 1.5)


def test_env_value_of_wrong_type_names_provider_and_field():
    with pytest.raises(ConfigError) as err:
        structure_config("lb", LoopbackConfig, {}, environ={"SMSGATE_LB_MAX_CONCURRENCY": "many"})
    assert "'lb'" in str(err.value) and "max_concurrency" in str(err.value)
    assert "many" not in str(err.value)


def test_unknown_key_names_provider_and_field():
    with pytest.raises(ConfigError) as err:
        structure_config("lb", LoopbackConfig, {"api_sekret": "x"}, environ={})
    assert err.value.provider == "lb" and err.value.field == "api_sekret"
    assert "api_sekret" in str(err.value)


def test_missing_key_names_provider_field_and_env_var():
    from smsgate.config import ProviderConfig

    with pytest.raises(ConfigError) as err:
        structure_config("acme", ProviderConfig, {}, environ={})
    assert "base_url" in str(err.value) and "SMSGATE_ACME_BASE_URL" in str(err.value)


@pytest.mark.parametrize("key,value", [("read_timeout", "'slow'"), ("verify_tls", "'yes'"),
                                       ("max_concurrency", "true"), ("api_secret", "123456")])
def test_wrong_type_names_field_without_value(tmp_path, key, value):
    path = write(tmp_path, f"[providers.loopback]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as err:
        Gateway(path, environ={}).provider("loopback")
    assert key in str(err.value) and "loopback" in str(err.value)
    assert "123456" not in str(err.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Gateway(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        Gateway(write(tmp_path, "[providers.x\n"))


def test_unknown_provider_lists_installed():
    with pytest.raises(ConfigError) as err:
        Gateway({"providers": {"nope": {}}}).provider("nope")
    assert "nope" in str(err.value) and "loopback" in str(err.value)


def test_default_provider(tmp_path):
    path = write(tmp_path, 'default_provider = "b"\n[providers.a]\nprovider="loopback"\n'
                           '[providers.b]\nprovider="loopback"\n')
    gw = Gateway(path, environ={})
    assert gw.context().provider == "loopback"
    with pytest.raises(ConfigError):
        Gateway({"providers": {"a": {"provider": "loopback"}, "b": {"provider": "loopback"}}}).context()


def test_a_validator_failure_names_the_field_not_the_value():
    import attrs

    from smsgate import ProviderConfig

    @attrs.frozen(kw_only=True)
    class Strict(ProviderConfig):
        base_url: str = "http://x"
        app_id: str = attrs.field(validator=attrs.validators.matches_re(r"[a-z]+"))
        token: str = attrs.field(default="", repr=False)

    with pytest.raises(ConfigError) as err:
        structure_config("acme", Strict, {"app_id": "NOPE-42"}, environ={})
    assert err.value.field == "app_id" and "app_id" in str(err.value) and "NOPE-42" not in str(err.value)


def test_list_values_from_the_environment_are_comma_separated():
    _, config = Gateway({"providers": {"loopback": {}}},
                        environ={"SMSGATE_LOOPBACK_REJECT_NUMBERS": "13800138000, 13900139000"}).provider("loopback")
    assert config.reject_numbers == ["13800138000", "13900139000"]


@pytest.mark.parametrize("key,value,words", [
    ("base_url", "127.0.0.1:9/api", "absolute URL"),
    ("base_url", "http://127.0.0.1:port/", "port"),
    ("connect_timeout", -1, "more than 0"),
    ("read_timeout", 0, "more than 0"),
    ("connect_retries", -1, "between 0 and 10"),
    ("max_concurrency", 0, "1 or more"),
    # each of these was accepted before, and made every send unknown or wait for ever
    ("read_timeout", float("inf"), "finite"),
    ("connect_timeout", float("nan"), "finite"),
    ("send_timeout", float("inf"), "finite"),
    ("send_timeout", 0, "more than 0"),
    ("base_url", "ftp://x", "http:// or https://"),
    ("base_url", "file:///etc/passwd", "absolute URL"),
    ("connect_retries", 12, "between 0 and 10"),
])
def test_common_keys_are_checked_when_loaded(key, value, words):
    with pytest.raises(ConfigError) as err:
        Gateway({"providers": {"loopback": {key: value}}}).provider("loopback")
    assert err.value.field == key and key in str(err.value) and words in str(err.value)


def test_memory_base_url_stays_for_the_loopback():
    _, config = Gateway({"providers": {"loopback": {"base_url": "memory://loopback"}}}).provider("loopback")
    assert config.base_url == "memory://loopback" and config.send_timeout == 60.0


@pytest.mark.parametrize("value", [1, ["loopback"], {"a": 1}, True])
def test_default_provider_of_the_wrong_type_names_the_key(value):
    with pytest.raises(ConfigError, match="default_provider") as err:
        Gateway({"default_provider": value, "providers": {"loopback": {}}})
    assert type(value).__name__ in str(err.value)


def test_unreadable_config_files_are_config_errors(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[providers.loopback]\napi_key = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        Gateway(str(bad))
    with pytest.raises(ConfigError, match="directory"):
        Gateway(str(tmp_path))
