"""The spawn form config: what it offers, how the form renders it, and how every choice (form
post, opt- URL, REST API) is checked against it before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


ONE = [{"id": "a"}]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"environments": []}, "environments: offer at least one"),
        ({"environments": [{"id": "a"}, {"id": "a"}]}, "environments: ids must be unique"),
        ({"environments": ONE, "cpu": {"choices": [1], "default": 3}}, "cpu: the default is not"),
        (
            {"environments": ONE, "memory": {"minimum": "1G"}},
            'memory: expected choices, or both minimum and maximum, got {"minimum": "1G"}',
        ),
        (
            {"environments": ONE, "cpu": {"choices": [1], "maximum": 4}},
            "cpu: expected either choices or minimum/maximum, not both",
        ),
        (
            {"environments": ONE, "images": []},
            "the form config: unknown keys images (expected: environments, default_environment, "
            "cpu, memory, gpu)",
        ),
        ({"environments": ONE, "default_environment": "b"}, "default_environment 'b' is not"),
        (
            {"environments": [{"id": "a"}, {"display_name": "B"}]},
            "environments[1]: expected a mapping with a non-empty id (and display_name, "
            'description, image, env, kubespawner_override), got {"display_name": "B"}',
        ),
        ({"environments": [{"id": ""}]}, 'environments[0].id: expected a non-empty name, got ""'),
        (
            {"environments": [{"id": "a", "env": {"PATH": ["/opt"]}}]},
            'environments[0].env.PATH: expected a string, got ["/opt"]',
        ),
        (
            {"environments": [{"id": "a", "kubespawner_override": ["node_selector"]}]},
            "environments[0].kubespawner_override: expected a mapping of KubeSpawner settings",
        ),
        ({"environments": {"id": "a"}}, "environments: expected a list of software environments"),
        (
            {"environments": ONE, "memory": {"choices": ["2G", None]}},
            "memory.choices[1]: expected an amount of memory such as 512M or 4G, got null",
        ),
        ({"environments": ONE, "memory": {"choices": ["lots"]}}, "memory: 'lots' is not an"),
        ({"environments": ONE, "cpu": [1, 2]}, "cpu: expected a mapping with choices, or with"),
        (
            {"environments": ONE, "gpu": {"available": "sure"}},
            'gpu.available: expected true or false, got "sure"',
        ),
        ({"environments": ONE, "gpu": True}, "gpu: expected a mapping such as {available: true}"),
        ([], "the form config: expected a mapping with environments"),
    ],
)
def test_a_broken_config_is_reported_to_the_admin_with_the_path_of_the_bad_key(config, message):
    with pytest.raises(FormConfigError) as e:
        SpawnForm.from_config(config)
    assert message in str(e.value)


def test_every_bad_key_is_reported_at_once():
    config = {"environments": [{"id": ""}], "gpu": {"available": "sure"}, "cpus": 2}
    with pytest.raises(FormConfigError) as e:
        SpawnForm.from_config(config)
    problems = str(e.value).split("; ")
    assert [p.split(":", 1)[0] for p in problems] == [
        "the form config",
        "environments[0].id",
        "gpu.available",
    ]


def test_an_inline_config_may_use_tuples_for_lists():
    form = SpawnForm.from_config({"environments": ({"id": "a"},), "cpu": {"choices": (1, 2)}})
    assert form.validate({"cpu": "2"}).cpu == 2


def test_a_broken_config_file_is_named_in_the_message(tmp_path):
    path = tmp_path / "form.yaml"
    path.write_text("environments:\n  - display_name: no id\n")
    with pytest.raises(FormConfigError, match=f"^{path}: environments\\[0\\]: expected"):
        SpawnForm.load(str(path))


def test_the_schema_is_valid_and_the_shipped_forms_follow_it():
    import yaml
    from jsonschema import Draft202012Validator

    from swan_hub.form import SCHEMA_FILE

    with open(SCHEMA_FILE) as f:
        Draft202012Validator.check_schema(json.load(f))
    root = Path(__file__).resolve().parent.parent
    SpawnForm.load(str(root / "swan_hub" / "docker_form.yaml"))
    SpawnForm.from_config(
        yaml.safe_load((root / "helm/swan/values.yaml").read_text())["singleuser"]["form"]
    )
    example = yaml.safe_load((root / "helm/swan/examples/eos-fuse-hostpath.yaml").read_text())
    SpawnForm.from_config(example["singleuser"]["form"])


def test_jsonschema_is_imported_only_when_a_form_config_is_loaded():
    """The hub imports swan_hub and its spawners at start without loading jsonschema."""
    script = (
        "import sys, swan_hub, swan_hub.form, swan_hub.spawner\n"
        "before = 'jsonschema' in sys.modules\n"
        "swan_hub.form.SpawnForm.from_config({'environments': [{'id': 'py'}]})\n"
        "print(before, 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "True"]


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
