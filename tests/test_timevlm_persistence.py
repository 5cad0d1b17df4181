"""TimeVLMForecaster.save / load: the same forecasts from a folder that holds the whole
network (the frozen VLM and RAL's memory included), and clear refusals of folders of
the other estimator, edited weights and edited configs."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from stvlm import STVLMForecaster, TimeVLMForecaster
from stvlm.persistence import CONFIG_FILE, WEIGHTS_FILE, _sha256

CHEAP = dict(history=48, horizon=12, backbone="tiny", d_model=16, max_epochs=1, random_state=0, verbose=0)
VARIANTS = {"fixed": {}, "learnable": dict(image="learnable"), "no-memory": dict(memory=False)}


@pytest.fixture(scope="module")
def series():
    t = np.arange(400)
    return np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24), np.sin(2 * np.pi * t / 12)], axis=1)


@pytest.fixture(scope="module")
def windows(series):
    return np.stack([series[s : s + 48] for s in (0, 100, 200, 352)])


@pytest.fixture(scope="module")
def saved(series, tmp_path_factory):
    """Each variant fitted once and saved: {name: (model, folder)}."""
    out = {}
    for name, extra in VARIANTS.items():
        # The learnable image runs the VLM in every step: a shorter series keeps it quick.
        model = TimeVLMForecaster(**CHEAP, **extra).fit(series[:200] if name == "learnable" else series)
        out[name] = model, model.save(tmp_path_factory.mktemp(name) / "model")
    return out


def _copy(path, tmp_path):
    return shutil.copytree(path, tmp_path / "copy")


def _params(model):
    return {k: v for k, v in model.get_params().items() if k != "callbacks"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_loaded_model_forecasts_as_the_saved_one(saved, windows, variant):
    model, path = saved[variant]
    config = json.loads((path / CONFIG_FILE).read_text())
    assert (config["format"], config["format_version"]) == ("timevlm-forecaster", 1)
    again = TimeVLMForecaster.load(path, device="cpu")
    np.testing.assert_array_equal(again.predict(windows), model.predict(windows))
    assert _params(again) == _params(model) and again.callbacks is None
    for name in ("n_features_in_", "mean_", "std_", "best_epoch_", "best_score_", "interrupted_", "loss_history_"):
        assert getattr(again, name) == getattr(model, name), name
    assert all(t.device.type == "cpu" for t in again.module_.state_dict().values())
    assert not again.module_.training


def test_the_vlm_weights_and_the_memory_buffer_survive(saved, windows):
    model, path = saved["fixed"]
    again = TimeVLMForecaster.load(path)
    ral, ral0 = again.module_.ral, model.module_.ral
    assert ral0.memory.abs().sum() > 0  # training filled it
    assert torch.equal(ral.memory, ral0.memory) and int(ral.memory_next) == int(ral0.memory_next)
    again.predict(windows)
    assert torch.equal(ral.memory, ral0.memory)  # forecasting does not write the memory
    state, state0 = again.module_.vlm.state_dict(), model.module_.vlm.state_dict()
    assert state.keys() == state0.keys() and all(torch.equal(state[k], state0[k]) for k in state)
    assert not any(p.requires_grad for p in again.module_.vlm.parameters())  # still frozen


def test_each_class_refuses_the_other_classs_folder(saved, tmp_path):
    _, path = saved["fixed"]
    with pytest.raises(ValueError, match=r"saved by TimeVLMForecaster\.save .*load it with TimeVLMForecaster\.load"):
        STVLMForecaster.load(path)
    cfg = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=16,
               patch_size=8, vocab_size=500)
    series = np.random.default_rng(0).gamma(2, 20, size=(120, 4))
    stvlm_path = STVLMForecaster(backbone=cfg, max_epochs=1, random_state=0, verbose=0).fit(series).save(tmp_path / "s")
    with pytest.raises(ValueError, match=r"saved by STVLMForecaster\.save .*load it with STVLMForecaster\.load"):
        TimeVLMForecaster.load(stvlm_path)


def test_edited_weights_are_refused(saved, tmp_path):
    d = _copy(saved["fixed"][1], tmp_path)
    raw = bytearray((d / WEIGHTS_FILE).read_bytes())
    raw[-100] ^= 0xFF
    (d / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the sha256"):
        TimeVLMForecaster.load(d)
    # Another model's weights, with the checksum made to match: their fields differ.
    shutil.copyfile(saved["no-memory"][1] / WEIGHTS_FILE, d / WEIGHTS_FILE)
    config = json.loads((d / CONFIG_FILE).read_text())
    config["weights_sha256"] = _sha256(d / WEIGHTS_FILE)
    (d / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="memory is True in stvlm_config.json, but the weights were trained with memory=False"):
        TimeVLMForecaster.load(d)


@pytest.mark.parametrize(
    "section, key, value, match",
    [
        ("params", "horizon", 6, "horizon is 6 in stvlm_config.json, but the weights were trained with horizon=12"),
        ("params", "top_k", 3, "top_k is 3"),
        ("params", "vlm", "clip", "must hold the CLIPConfig"),
        ("fitted", "mean_", 1.5, "mean_ is 1.5"),
        ("fitted", "std_", 0.0, "std_' must be a finite number > 0"),
        ("fitted", "predict", 1, r"unknown fitted fields \['predict'\]"),
        ("network", "vlm_config_class", "CLIPConfig", "must hold the ViltConfig"),
        (None, "format_version", 9, "format version 9"),
        (None, "format", "other", "no format marker 'timevlm-forecaster'"),
    ],
)
def test_an_edited_config_is_refused_naming_the_field(saved, tmp_path, section, key, value, match):
    d = _copy(saved["fixed"][1], tmp_path)
    config = json.loads((d / CONFIG_FILE).read_text())
    (config if section is None else config[section])[key] = value
    (d / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        TimeVLMForecaster.load(d)


def test_not_a_saved_model(tmp_path):
    with pytest.raises(ValueError, match="is not a saved TimeVLMForecaster: expected stvlm_config.json"):
        TimeVLMForecaster.load(tmp_path)


def _checkpoint_with_a_tokenizer(folder):
    """A tiny ViLT checkpoint folder with a word-piece tokenizer of the prompts' words."""
    from transformers import BertTokenizer, ViltModel

    from stvlm.network.backbone import make_prompt
    from stvlm.timevlm import make_prompts, tiny_vlm_config

    text = make_prompt(2, 2) + " ".join(make_prompts(torch.randn(1, 48, 3), history=48, horizon=12,
                                                     description=None, transform="fixed"))
    words = sorted(set(re.findall(r"[a-z]+|[^\w\s]", text.lower())))
    digits = [str(i) for i in range(10)] + [f"##{i}" for i in range(10)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *digits, *words]
    ViltModel(tiny_vlm_config("vilt"), add_pooling_layer=False).save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    return folder


def test_a_checkpoints_tokenizer_is_saved_and_the_folder_loads_without_the_checkpoint(saved, series, tmp_path):
    checkpoint = _checkpoint_with_a_tokenizer(tmp_path / "checkpoint")
    model = TimeVLMForecaster(**{**CHEAP, "backbone": str(checkpoint)}).fit(series[:200])
    assert model.module_.vlm.tokenizer is not None
    d = model.save(tmp_path / "m")
    assert (d / "tokenizer").is_dir()
    shutil.rmtree(checkpoint)  # the saved folder is self-contained
    again = TimeVLMForecaster.load(d)
    assert type(again.module_.vlm.tokenizer) is type(model.module_.vlm.tokenizer)
    X = series[None, -48:]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.backbone == str(checkpoint)

    tokenizer_file = next(p for p in sorted((d / "tokenizer").iterdir()) if p.suffix == ".json")
    original = tokenizer_file.read_bytes()
    tokenizer_file.write_bytes(original + b" ")
    with pytest.raises(ValueError, match=rf"{tokenizer_file.name} does not match the sha256"):
        TimeVLMForecaster.load(d)
    tokenizer_file.write_bytes(original)
    # Saving a model without a tokenizer over it replaces the tokenizer's folder.
    fixed, _ = saved["fixed"]
    fixed.save(d)
    assert not (d / "tokenizer").exists()
    np.testing.assert_array_equal(TimeVLMForecaster.load(d).predict(X), fixed.predict(X))


@pytest.mark.parametrize("kind", ["vilt", "clip", "blip2"])
def test_a_config_backbone_is_stored_as_its_class_and_values(kind):
    from stvlm._persistence_format import spec_of
    from stvlm.timevlm import tiny_vlm_config

    spec = spec_of(TimeVLMForecaster)
    config = tiny_vlm_config(kind)
    params = json.loads(json.dumps(spec.params_to_json(TimeVLMForecaster(vlm=kind, backbone=config))))
    assert params["backbone"]["transformers_config"] == type(config).__name__
    back = spec.params_from_json(params)["backbone"]
    assert type(back) is type(config) and back.to_dict() == config.to_dict()
    params["vlm"] = "vilt" if kind != "vilt" else "clip"
    with pytest.raises(ValueError, match="must be a stored"):
        spec.params_from_json(params)
