"""The frozen VLM backbones of Time-VLM (stvlm.timevlm._backbones), on tiny random configs."""

import zlib

import pytest
import torch

from stvlm.network import BackboneNotAvailableError
from stvlm.timevlm import DEFAULT_VLMS, VLMEncoder, load_vlm, tiny_vlm_config

KINDS = ["vilt", "clip", "blip2"]
DIMS = {"vilt": (32, 32), "clip": (48, 32), "blip2": (32, 48)}
LIMITS = {"vilt": 40, "clip": 77, "blip2": 128}
PROMPTS = ["The series rises; forecast the next 12 steps.", "A flat series, min 0.1 max 0.9, trend down."]


@pytest.fixture(scope="module", params=KINDS)
def encoder(request):
    torch.manual_seed(0)
    return load_vlm(request.param, tiny_vlm_config(request.param))


def _images(seed=0, batch=2, size=32):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_shapes_and_attributes(encoder):
    kind = encoder.kind
    assert encoder.image_size == 32
    assert (encoder.vision_dim, encoder.text_dim) == DIMS[kind]
    assert encoder.max_text_tokens == LIMITS[kind]
    assert encoder.tokenizer is None
    vision, text = encoder(_images(), PROMPTS)
    assert vision.shape == (2, encoder.vision_dim) and text.shape == (2, encoder.text_dim)
    assert vision.dtype == text.dtype == torch.float32
    assert torch.isfinite(vision).all() and torch.isfinite(text).all()
    # one prompt for the whole batch; images of another size are resized
    vision2, text2 = encoder(_images(size=48), "one prompt")
    assert vision2.shape == vision.shape and text2.shape == text.shape


def test_frozen_and_eval_survives_train(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    parent = torch.nn.Sequential(encoder, torch.nn.Linear(2, 2))
    parent.train()
    assert encoder.training
    assert not any(m.training for m in encoder.backbone.modules())
    parent.eval()
    assert not encoder.training


def test_gradient_reaches_images(encoder):
    conv = torch.nn.Conv2d(3, 3, 1)  # a learnable image module upstream
    images = _images().requires_grad_(True)
    vision, text = encoder(torch.sigmoid(conv(images)), PROMPTS)
    (vision.square().sum() + text.square().sum()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_no_graph_without_grad(encoder):
    vision, text = encoder(_images(), PROMPTS)
    assert not vision.requires_grad and not text.requires_grad


def test_deterministic_and_rng_untouched(encoder):
    state = torch.get_rng_state()
    a = encoder(_images(), PROMPTS)
    b = encoder(_images(), PROMPTS)
    assert torch.equal(torch.get_rng_state(), state)  # no torch.multinomial patch shuffle
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # batch composition does not change a sample's vectors
    single = encoder(_images()[:1], PROMPTS[:1])
    torch.testing.assert_close(single[0], a[0][:1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(single[1], a[1][:1], rtol=1e-4, atol=1e-5)


def test_fallback_tokeniser_is_stable(encoder):
    ids, mask = encoder.tokenize(["up then down", "down, up"])
    assert ids.dtype == torch.long and mask.shape == ids.shape
    assert int(ids.max()) < encoder.vocab_size and int(ids.min()) >= 0
    assert ids[0, 1] == ids[1, 3]  # "up"
    assert ids[0, 3] == ids[1, 1]  # "down"
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    word = 3 + zlib.crc32(b"down") % (encoder._upper - 3)  # stable across processes
    assert int(ids[0, 3]) == word
    short, _ = encoder.tokenize(["up"])
    assert short.shape == (1, 3) and short[0, 1] == ids[0, 1]
    assert encoder.tokenize(["Up"])[0].tolist() == short.tolist()  # lower-cased


def test_long_prompts_are_truncated(encoder):
    long_prompt = " ".join(f"word{i}" for i in range(300))
    ids, mask = encoder.tokenize([long_prompt, "short"])
    assert ids.shape == (2, encoder.max_text_tokens)
    assert mask[0].all() and mask[1].sum() == 3
    _, text = encoder(_images(), [long_prompt, "short"])
    assert torch.isfinite(text).all()


def test_tokenisation_cache_is_bounded():
    enc = VLMEncoder(load_vlm("vilt", tiny_vlm_config("vilt")).backbone, cache_size=2)
    for p in ["a", "b", "c", "a"]:
        enc.tokenize([p])
    assert list(enc._cache) == ["c", "a"]


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_directory(kind, tmp_path):
    torch.manual_seed(1)
    enc = load_vlm(kind, tiny_vlm_config(kind))
    enc.backbone.save_pretrained(str(tmp_path))
    loaded = load_vlm(kind, str(tmp_path), local_files_only=True)
    assert loaded.kind == kind and loaded.tokenizer is None
    for a, b in zip(enc(_images(), PROMPTS), loaded(_images(), PROMPTS)):
        torch.testing.assert_close(a, b)


def test_model_instance_used_as_is():
    enc = load_vlm("vilt", tiny_vlm_config("vilt"))
    again = load_vlm("vilt", enc.backbone)
    assert again.backbone is enc.backbone


def test_real_tokenizer_path(tmp_path):
    import transformers
    from transformers import BertTokenizerFast

    from stvlm.network import make_prompt

    words = sorted(set(make_prompt(2, 2).lower().replace(",", " , ").replace(";", " ; ").replace(".", " . ").split()))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    if int(transformers.__version__.split(".")[0]) >= 5:  # takes the vocabulary itself
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(tokens)})
    else:
        (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    enc = load_vlm("vilt", tiny_vlm_config("vilt"))
    enc.backbone.save_pretrained(str(tmp_path / "model"))
    tokenizer.save_pretrained(str(tmp_path / "model"))
    loaded = load_vlm("vilt", str(tmp_path / "model"))
    assert loaded.tokenizer is not None
    ids, mask = loaded.tokenize([make_prompt(2, 2) * 5, "the image"])
    assert ids.shape == (2, 40) and ids[0, 0] == tokenizer.cls_token_id and ids[0, -1] == tokenizer.sep_token_id
    assert ids[1, :4].tolist() == tokenizer("the image")["input_ids"] and mask[1].sum() == 4
    _, text = loaded(_images(), [make_prompt(2, 2) * 5, "the image"])
    assert text.shape == (2, 32)


def test_vilt_matches_pixel_values_path():
    """The deterministic image_embeds path equals ViLT's own (shuffled) pixel path."""
    torch.manual_seed(2)
    enc = load_vlm("vilt", tiny_vlm_config("vilt"))
    images = _images()
    vision, text = enc(images, PROMPTS)
    ids, mask = enc.tokenize(PROMPTS)
    pixels = (images - 0.5) / 0.5
    out = enc.backbone(input_ids=ids, attention_mask=mask, pixel_values=pixels).last_hidden_state
    n = ids.shape[1]
    weights = mask[..., None].float()
    torch.testing.assert_close(text, (out[:, :n] * weights).sum(1) / weights.sum(1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(vision, out[:, n:].mean(1), rtol=1e-4, atol=1e-5)


def test_missing_folder_and_offline(monkeypatch, tmp_path):
    with pytest.raises(BackboneNotAvailableError, match="no such local directory"):
        load_vlm("clip", str(tmp_path / "missing" / "model"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneNotAvailableError, match="offline") as info:
        load_vlm("blip2", "nobody-here/no-such-vlm")
    assert "blip2" in str(info.value) and "Blip2Config" in str(info.value)
    with pytest.raises(BackboneNotAvailableError, match="local_files_only"):
        load_vlm("vilt", "nobody-here/no-such-vlm", local_files_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneNotAvailableError, match="no loadable CLIPModel"):
        load_vlm("clip", str(tmp_path / "empty"))


def test_bad_arguments():
    with pytest.raises(TypeError, match="CLIPConfig"):
        load_vlm("clip", tiny_vlm_config("vilt"))
    with pytest.raises(TypeError, match="ViltConfig"):
        load_vlm("vilt", tiny_vlm_config("blip2"))
    with pytest.raises(ValueError, match="kind"):
        load_vlm("llava")
    with pytest.raises(ValueError, match="kind"):
        tiny_vlm_config("llava")
    with pytest.raises(TypeError):
        load_vlm("vilt", 3)
    with pytest.raises(ValueError, match="max_text_tokens"):
        VLMEncoder(load_vlm("vilt", tiny_vlm_config("vilt")).backbone, max_text_tokens=41)
    assert set(DEFAULT_VLMS) == set(KINDS)


def test_input_checks():
    enc = load_vlm("vilt", tiny_vlm_config("vilt"))
    with pytest.raises(ValueError, match="prompts"):
        enc(_images(), ["only one"])
    with pytest.raises(ValueError, match="shape"):
        enc(torch.rand(2, 1, 32, 32), PROMPTS)
