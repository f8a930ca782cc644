"""The spawn form config: what it offers, how the form renders it, and how every choice (form
post, opt- URL, REST API) is checked against it before anything starts."""

from __future__ import annotations

import json

import pytest

from swan_hub.form import FormConfigError, InvalidChoice, SpawnForm, parse_bytes

CONFIG = {
    "environments": [
        {"id": "py", "display_name": "Python 3", "description": "<b>bold</b> & more"},
        {"id": "lcg", "display_name": "LCG 105", "env": {"SWAN_STACK": "LCG_105"}},
    ],
    "default_environment": "lcg",
    "cpu": {"choices": [1, 2, 4], "default": 2},
    "memory": {"minimum": "1G", "maximum": "8G", "default": "2G"},
    "gpu": {"available": True},
}


@pytest.fixture
def form() -> SpawnForm:
    return SpawnForm.from_config(CONFIG)


def test_an_empty_choice_gets_the_defaults(form):
    choice = form.validate({})
    assert (choice.environment.id, choice.cpu, choice.memory, choice.gpu) == (
        "lcg",
        2.0,
        2 * 1024**3,
        False,
    )
    assert choice.environment.env == {"SWAN_STACK": "LCG_105"}


def test_form_posts_and_rest_api_values_are_read_alike(form):
    posted = form.validate({"environment": ["py"], "cpu": ["4"], "memory": ["3G"], "gpu": ["yes"]})
    api = form.validate({"environment": "py", "cpu": 4, "memory": "3G", "gpu": True})
    assert posted == api
    assert api.as_user_options() == {"environment": "py", "cpu": 4.0, "memory": "3G", "gpu": True}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"cpu": "64"}, "CPU cores: 64 is not offered; choose one of 1, 2, 4."),
        ({"cpu": "nan"}, "CPU cores: nan is not offered"),
        ({"cpu": "two"}, "CPU cores: 'two' is not a number."),
        ({"memory": "9G"}, "Memory: 9G is not offered; choose from 1G to 8G."),
        ({"memory": "-1G"}, "Memory:"),
        ({"environment": "../../etc"}, "Software environment '../../etc' is not offered"),
        ({"image": "evil/image"}, "Unknown spawn option(s): image."),
        ({"cpu": ["1", "2"]}, "expected one value"),
        ({"gpu": "maybe"}, "GPU: 'maybe' is not yes or no"),
    ],
)
def test_values_the_config_does_not_offer_are_refused_with_a_message(form, options, message):
    with pytest.raises(InvalidChoice) as e:
        form.validate(options)
    assert message in str(e.value)


def test_a_gpu_cannot_be_requested_where_none_is_offered():
    form = SpawnForm.from_config({**CONFIG, "gpu": {"available": False}})
    with pytest.raises(InvalidChoice, match="GPUs are not offered"):
        form.validate({"gpu": "yes"})


def test_the_form_is_rendered_from_the_config_with_everything_escaped(form):
    html = form.render()
    assert '<option value="lcg" selected>LCG 105</option>' in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert 'name="gpu"' in html
    assert "From 1G to 8G." in html
    # no config reaches the script: it only reads the fields of the page
    script = html.split("<script>", 1)[1]
    assert "LCG" not in script and "{" not in script.split("(function", 1)[0]


def test_url_parameters_pre_fill_the_form_and_bad_ones_fall_back_to_defaults(form):
    html = form.render({"environment": ["py"], "cpu": ["4"], "memory": ["99G"]})
    assert '<option value="py" selected>' in html
    assert '<option value="4" selected>' in html
    assert 'value="2G"' in html
    assert "opt-environment=py&amp;opt-cpu=4&amp;opt-memory=2G&amp;opt-gpu=no" in html


@pytest.mark.parametrize(
    "config, message",
    [
        ({"environments": []}, "offer at least one"),
        ({"environments": [{"id": "a"}, {"id": "a"}]}, "unique"),
        ({"environments": [{"id": "a"}], "cpu": {"choices": [1], "default": 3}}, "default"),
        ({"environments": [{"id": "a"}], "memory": {"minimum": "1G"}}, "both minimum and maximum"),
        ({"environments": [{"id": "a"}], "images": []}, "unknown keys"),
        ({"environments": [{"id": "a"}], "default_environment": "b"}, "not offered"),
    ],
)
def test_a_broken_config_is_reported_to_the_admin(config, message):
    with pytest.raises(FormConfigError, match=message):
        SpawnForm.from_config(config)


def test_yaml_and_json_config_files_give_the_same_form(tmp_path):
    import yaml

    (tmp_path / "form.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "form.json").write_text(json.dumps(CONFIG))
    a = SpawnForm.load(str(tmp_path / "form.yaml"))
    b = SpawnForm.load(str(tmp_path / "form.json"))
    assert a.validate({"cpu": 4}) == b.validate({"cpu": 4})


@pytest.mark.parametrize(
    "text, amount", [("512M", 512 * 1024**2), ("4G", 4 * 1024**3), ("4Gi", 4 * 1024**3)]
)
def test_memory_amounts_use_the_units_of_jupyterhub(text, amount):
    assert parse_bytes(text) == amount
