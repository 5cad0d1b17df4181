"""Tests of stvlm.network: backbone loading, positions, SAF attention, the ST-VLM network."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
from _offline import record_connections
import torch
from transformers import BertTokenizerFast, ViltConfig, ViltModel

from stvlm.network import (
    DEFAULT_BACKBONE,
    BackboneNotAvailableError,
    ExtendedPositionEmbedding,
    PadConvBias,
    SAFSelfAttention,
    STVLMNetwork,
    extend_text_positions,
    install_saf,
    load_backbone,
    make_prompt,
    tokenize_prompt,
    trainable_parameter_summary,
)

HIDDEN, LAYERS, HEADS, IMAGE, PATCH = 32, 2, 4, 32, 8
N, HISTORY, HORIZON, BATCH = 12, 12, 3, 2
ENC, DEC, R = 16, 16, 4


def tiny_config(**kw):
    params = dict(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=64,
        image_size=IMAGE,
        patch_size=PATCH,
        max_position_embeddings=40,
        vocab_size=1000,
    )
    params.update(kw)
    return ViltConfig(**params)


def tiny_backbone(seed=0, **kw):
    torch.manual_seed(seed)
    return ViltModel(tiny_config(**kw), add_pooling_layer=False)


def prompt_ids(n_nodes=N, horizon=HORIZON):
    return tokenize_prompt(make_prompt(n_nodes, horizon), None, 1000)


def make_net(fusion="saf", finetune="lora", n_nodes=N, seed=0, backbone=None, **kw):
    backbone = tiny_backbone(seed) if backbone is None else backbone
    torch.manual_seed(seed + 1)
    return STVLMNetwork(
        backbone,
        prompt_ids(n_nodes),
        n_nodes=n_nodes,
        history=HISTORY,
        horizon=HORIZON,
        fusion=fusion,
        finetune=finetune,
        lora_r=R,
        encoder_hidden=ENC,
        decoder_hidden=kw.pop("decoder_hidden", DEC),
        **kw,
    )


def inputs(batch=BATCH, n_nodes=N, size=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, HISTORY, n_nodes, generator=g)
    size = n_nodes if size is None else size
    images = torch.zeros(batch, 3, size, size)
    images[:, :, :n_nodes, :n_nodes] = torch.rand(batch, 3, n_nodes, n_nodes, generator=g)
    return x, images


def lstm_params(n_in, n_hidden):
    return 4 * n_hidden * (n_in + n_hidden) + 8 * n_hidden


# ----------------------------------------------------------------------------- backbone


def test_load_backbone_from_config_is_random_and_leaves_config_alone():
    cfg = tiny_config()
    model, tokenizer = load_backbone(cfg)
    assert isinstance(model, ViltModel) and model.pooler is None and tokenizer is None
    extend_text_positions(model, 60)
    assert model.config.max_position_embeddings == 60
    assert cfg.max_position_embeddings == 40  # the caller's config was copied


def test_load_backbone_passes_model_through():
    model = tiny_backbone()
    loaded, tokenizer = load_backbone(model)
    assert loaded is model and tokenizer is None


def test_load_backbone_from_local_directory(tmp_path):
    model = tiny_backbone(seed=3)
    model.save_pretrained(tmp_path)
    loaded, tokenizer = load_backbone(str(tmp_path))
    assert isinstance(loaded, ViltModel) and loaded.pooler is None
    assert tokenizer is None  # only weights were saved: no vocabulary, fallback tokenisation
    ref, new = model.state_dict(), loaded.state_dict()
    assert ref.keys() == new.keys()
    assert all(torch.equal(ref[k], new[k]) for k in ref)


def test_load_backbone_with_tokenizer_in_directory(tmp_path):
    words = sorted(set(make_prompt(7, 3).lower().replace(",", " , ").replace(";", " ; ").replace(".", " . ")
                       .replace("-", " - ").split()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    try:  # transformers >= 5 takes ``vocab``, 4.x ``vocab_file``
        tok = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    except TypeError:  # pragma: no cover
        tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    tok.save_pretrained(tmp_path)
    tiny_backbone().save_pretrained(tmp_path)
    model, tokenizer = load_backbone(tmp_path)
    assert tokenizer is not None
    ids = tokenize_prompt(make_prompt(7, 3), tokenizer, model.config.vocab_size)
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in ids.tolist()


def _check_message(message):
    assert "huggingface-cli download" in message
    assert "local directory" in message
    assert "ViltConfig" in message


def test_load_backbone_offline_unknown_name_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = record_connections(monkeypatch)
    with pytest.raises(BackboneNotAvailableError) as info:
        load_backbone("no-such-org/no-such-vilt-model-xyz")
    assert attempts == []  # fails at once: no download attempt
    assert isinstance(info.value, OSError)
    assert "offline" in str(info.value)
    _check_message(str(info.value))


def test_load_backbone_missing_path_and_local_only(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(BackboneNotAvailableError) as info:
        load_backbone(str(tmp_path / "missing" / "vilt"))  # a path: never downloaded
    _check_message(str(info.value))
    with pytest.raises(BackboneNotAvailableError) as info:
        load_backbone("no-such-org/no-such-vilt-model-xyz", local_files_only=True)
    _check_message(str(info.value))
    with pytest.raises(BackboneNotAvailableError):
        load_backbone(tmp_path)  # a directory without a model
    with pytest.raises(TypeError):
        load_backbone(3)
    assert DEFAULT_BACKBONE == "dandelin/vilt-b32-mlm"


def test_make_prompt():
    assert make_prompt(170, 12) == (
        "This is a spatial-temporal prediction task, forecast the next 12 steps in 170 nodes; "
        "the image depicts the temporal correlation among nodes, with color blocks representing "
        "correlation levels."
    )


def test_tokenize_prompt_fallback_vocabulary():
    prompt = make_prompt(10, 12)
    ids = tokenize_prompt(prompt, None, 1000)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert torch.equal(ids, tokenize_prompt(prompt, None, 1000))
    assert ids[0] == 1 and ids[-1] == 2
    body = ids[1:-1]
    assert body.min() >= 3 and ids.max() < 1000
    assert ids.tolist().count(1) == 1 and ids.tolist().count(2) == 1
    # repeated words share an id ("the" appears several times), first appearance order
    assert tokenize_prompt("a b a .", None, 1000).tolist() == [1, 3, 4, 3, 5, 2]
    small = tokenize_prompt(prompt, None, 10)
    assert small.max() < 10 and small.min() >= 1
    with pytest.raises(ValueError):
        tokenize_prompt(prompt, None, 3)


# ----------------------------------------------------------------------------- positions


def test_extend_text_positions_keeps_pretrained_rows():
    model = tiny_backbone()
    text = model.embeddings.text_embeddings
    original = text.position_embeddings.weight.detach().clone()
    table = extend_text_positions(model, 70)
    assert isinstance(table, ExtendedPositionEmbedding) and text.position_embeddings is table
    assert model.config.max_position_embeddings == 70
    assert text.position_ids.shape == (1, 70) and torch.equal(text.position_ids[0], torch.arange(70))
    assert text.token_type_ids.shape == (1, 70) and not text.token_type_ids.any()
    out = table(torch.arange(70)[None])[0]
    assert torch.equal(out[:40], original)
    src = table.source_index
    assert torch.equal(src[:40], torch.arange(40))
    assert torch.equal(src[40:], 1 + (torch.arange(40, 70) - 1) % 39)
    assert torch.equal(out[40:], original[src[40:]])
    assert not table.base.requires_grad and table.extra.requires_grad
    # gradients reach the new rows only
    out = table(torch.arange(70)[None])
    (out * torch.randn_like(out)).sum().backward()
    assert table.base.grad is None
    assert table.extra.grad is not None and table.extra.grad.abs().sum() > 0


def test_extend_text_positions_noop_and_growth():
    model = tiny_backbone()
    before = model.embeddings.text_embeddings.position_embeddings
    assert extend_text_positions(model, 30) is before
    assert model.config.max_position_embeddings == 40
    table = extend_text_positions(model, 50)
    with torch.no_grad():
        table.extra.add_(1.0)  # "trained" rows
    trained = table.full_weight().detach().clone()
    grown = extend_text_positions(model, 80)
    assert grown.num_embeddings == 80
    assert torch.equal(grown.full_weight()[:50], trained)
    assert model.embeddings.text_embeddings.position_ids.shape == (1, 80)


def test_text_embeddings_after_extension():
    model = tiny_backbone().eval()
    text = model.embeddings.text_embeddings
    reference = copy.deepcopy(text)
    emb = torch.randn(2, 30, HIDDEN)
    extend_text_positions(model, 60)
    assert torch.equal(text(inputs_embeds=emb), reference(inputs_embeds=emb))
    long_emb = torch.randn(2, 60, HIDDEN)
    out = text(inputs_embeds=long_emb)
    assert out.shape == (2, 60, HIDDEN)
    # the whole backbone accepts a text stream longer than 40 tokens
    n_img = 1 + (IMAGE // PATCH) ** 2
    res = model(
        inputs_embeds=long_emb,
        image_embeds=torch.randn(2, n_img, HIDDEN),
        pixel_mask=torch.ones(2, n_img, dtype=torch.long),
    )
    assert res.last_hidden_state.shape == (2, 60 + n_img, HIDDEN)


# ----------------------------------------------------------------------------- SAF


def _hidden_and_mask(length=20):
    g = torch.Generator().manual_seed(1)
    h = torch.randn(3, length, HIDDEN, generator=g)
    mask = torch.zeros(3, 1, length, length)
    mask[0, ..., -2:] = torch.finfo(torch.float32).min
    return h, mask


def test_saf_without_bias_equals_original():
    model = tiny_backbone()
    original = model.encoder.layer[0].attention.attention
    reference = copy.deepcopy(original)
    saf = install_saf(model)
    assert model.encoder.layer[0].attention.attention is saf
    assert saf.query is original.query and saf.key is original.key and saf.value is original.value
    h, mask = _hidden_and_mask()
    for m in (None, mask):
        ref = reference(h, m, True)
        out = saf(h, m, True)
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    assert len(saf(h, mask)) == 1


def test_fused_attention_with_an_all_zero_mask_equals_vilt():
    """ViLT passes an all-zero additive mask for a batch without padding; the fused path
    drops it and still computes ViLT's attention."""
    model = tiny_backbone()
    reference = copy.deepcopy(model.encoder.layer[0].attention.attention)
    saf = install_saf(model)
    h, _ = _hidden_and_mask()
    zeros = torch.zeros(3, 1, 1, h.shape[1])
    torch.testing.assert_close(saf(h, zeros)[0], reference(h, zeros, False)[0], rtol=1e-5, atol=1e-6)


def test_saf_zero_scale_equals_original():
    model = tiny_backbone()
    reference = copy.deepcopy(model.encoder.layer[0].attention.attention)
    saf = install_saf(model)
    pad = PadConvBias(HEADS)
    with torch.no_grad():
        pad.scale.zero_()
    h, mask = _hidden_and_mask()
    with saf.sensor_bias(pad(torch.rand(3, 3, 8, 8)), offset=5):
        out = saf(h, mask, False)
    torch.testing.assert_close(out[0], reference(h, mask, False)[0], rtol=1e-5, atol=1e-6)


def test_saf_bias_changes_only_sensor_block():
    model = tiny_backbone()
    saf = install_saf(model)
    h, mask = _hidden_and_mask(length=20)
    offset, n = 6, 8
    bias = torch.randn(3, HEADS, n, n)
    plain = saf.attention_scores(h, mask)
    with saf.sensor_bias(bias, offset):
        biased = saf.attention_scores(h, mask)
        out_biased = saf(h, mask)[0]
    assert saf.bias is None
    diff = biased - plain
    block = (slice(None), slice(None), slice(offset, offset + n), slice(offset, offset + n))
    assert torch.allclose(diff[block], bias / math.sqrt(HIDDEN // HEADS), atol=1e-5)
    diff[block] = 0
    # with a bias the queries are scaled before the product: the rest agrees to rounding
    torch.testing.assert_close(diff, torch.zeros_like(diff), rtol=0, atol=1e-6)
    assert not torch.allclose(out_biased, saf(h, mask)[0])


def test_saf_bias_cleared_on_error():
    saf = install_saf(tiny_backbone())
    with pytest.raises(RuntimeError):
        with saf.sensor_bias(torch.zeros(1, HEADS, 2, 2), 0):
            raise RuntimeError("boom")
    assert saf.bias is None
    with pytest.raises(ValueError):
        saf.set_sensor_bias(torch.zeros(1, HEADS + 1, 2, 2), 0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_peft_finds_query_key_after_saf():
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import Linear as LoraLinear

    model = tiny_backbone()
    install_saf(model)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["query", "key"]))
    saf = peft_model.base_model.model.encoder.layer[0].attention.attention
    assert isinstance(saf, SAFSelfAttention)
    assert isinstance(saf.query, LoraLinear) and isinstance(saf.key, LoraLinear)
    assert not isinstance(saf.value, LoraLinear)


def test_padconv_bias():
    pad = PadConvBias(HEADS)
    out = pad(torch.rand(2, 3, 9, 9))
    assert out.shape == (2, HEADS, 9, 9)
    assert torch.allclose(out.mean(dim=(-2, -1)), torch.zeros(2, HEADS), atol=1e-5)
    assert torch.allclose(out.std(dim=(-2, -1), unbiased=False), torch.ones(2, HEADS), atol=1e-3)
    const = pad(torch.full((2, 3, 9, 9), 0.3))
    assert torch.equal(const, torch.zeros_like(const))
    assert pad.scale.item() == 1.0


# ----------------------------------------------------------------------------- network


@pytest.mark.parametrize("fusion", ["saf", None])
@pytest.mark.parametrize("finetune", ["lora", None])
def test_network_output_shape(fusion, finetune):
    net = make_net(fusion, finetune).eval()
    for size in (N, 20, IMAGE):
        x, images = inputs(size=size)
        y = net(x, images)
        assert y.shape == (BATCH, HORIZON, N) and torch.isfinite(y).all()
    assert net.n_text_tokens == len(prompt_ids()) + N > 40


def test_network_is_deterministic_and_leaves_rng_alone():
    net = make_net().eval()
    x, images = inputs(size=20)
    state = torch.get_rng_state()
    y1 = net(x, images)
    y2 = net(x, images)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(y1, y2)


def test_image_path_matches_vilt_visual_embed():
    """Our deterministic image tokens give ViLT's output at the text tokens."""
    net = make_net(fusion=None, finetune=None).eval()
    x, images = inputs(size=20)
    mixed = net.mix_image(images)
    text = net.embed_text(x)
    ours = net.backbone(inputs_embeds=text, image_embeds=net.embed_image(mixed),
                        pixel_mask=torch.ones(BATCH, net.n_image_tokens, dtype=torch.long))
    pixels = (torch.nn.functional.pad(mixed, (0, IMAGE - N, 0, IMAGE - N)) - 0.5) / 0.5
    state = torch.get_rng_state()
    vilt = net.backbone(inputs_embeds=text, pixel_values=pixels)
    assert not torch.equal(torch.get_rng_state(), state)  # why we avoid that path
    L = net.n_text_tokens
    assert vilt.last_hidden_state.shape == ours.last_hidden_state.shape
    assert torch.allclose(ours.last_hidden_state[:, : L + 1], vilt.last_hidden_state[:, : L + 1], atol=1e-5)


def test_network_zero_scale_saf_equals_no_bias():
    net = make_net().eval()
    x, images = inputs()
    with torch.no_grad():
        net.padconv.scale.zero_()
    y_zero = net(x, images)
    padconv, net.padconv = net.padconv, None  # forward without any bias
    y_plain = net(x, images)
    net.padconv = padconv
    torch.testing.assert_close(y_zero, y_plain, rtol=1e-6, atol=1e-7)  # a zero mask vs none: another SDPA kernel
    with torch.no_grad():
        net.padconv.scale.fill_(1.0)
    assert not torch.equal(net(x, images), y_plain)


def test_trainable_parameters_exact():
    net = make_net()
    n_text = len(prompt_ids()) + N
    expected = {
        "lora": LAYERS * 2 * R * (HIDDEN + HIDDEN),
        "temporal_encoder": lstm_params(1, ENC) + ENC * HIDDEN + HIDDEN,
        "w_af": 9,
        "padconv": HEADS * 3 * 3 * 3 + 1,
        "positions": (n_text - 40) * HIDDEN,
        "head": lstm_params(HIDDEN, DEC) + DEC + 1,
        "calendar": 0,
        "other": 0,
    }
    expected["total"] = sum(expected.values())
    assert trainable_parameter_summary(net) == expected
    names = {n for n, p in net.named_parameters() if p.requires_grad}
    lora_names = {
        f"backbone.encoder.layer.{i}.attention.attention.{m}.lora_{ab}.default.weight"
        for i in range(LAYERS) for m in ("query", "key") for ab in "AB"
    }
    other = {
        "backbone.embeddings.text_embeddings.position_embeddings.extra",
        "w_af.weight", "padconv.conv.weight", "padconv.scale",
        "temporal_encoder.lstm.weight_ih_l0", "temporal_encoder.lstm.weight_hh_l0",
        "temporal_encoder.lstm.bias_ih_l0", "temporal_encoder.lstm.bias_hh_l0",
        "temporal_encoder.proj.weight", "temporal_encoder.proj.bias",
        "head.lstm.weight_ih_l0", "head.lstm.weight_hh_l0", "head.lstm.bias_ih_l0",
        "head.lstm.bias_hh_l0", "head.out.weight", "head.out.bias",
    }
    assert names == lora_names | other


def test_fusion_none_gives_no_bias_and_vilt_attention():
    """Without SAF no layer gets a bias: each layer's (fused) attention is ViLT's."""
    backbone = tiny_backbone()
    original = copy.deepcopy(backbone.encoder.layer[0].attention.attention).eval()
    net = make_net(fusion=None, finetune=None, backbone=backbone).eval()
    assert net.padconv is None and net.saf is None
    layer0 = net.backbone.encoder.layer[0].attention.attention
    assert isinstance(layer0, SAFSelfAttention) and layer0.bias is None
    h, mask = _hidden_and_mask()
    with torch.no_grad():
        torch.testing.assert_close(layer0(h, mask)[0], original(h, mask)[0], rtol=1e-5, atol=1e-6)
    assert trainable_parameter_summary(net)["padconv"] == 0


def test_finetune_none_freezes_backbone():
    net = make_net(finetune=None)
    assert not any("lora_" in n for n, _ in net.named_parameters())
    trainable = [n for n, p in net.backbone.named_parameters() if p.requires_grad]
    # the only backbone tensor that trains is the new position rows
    assert trainable == ["embeddings.text_embeddings.position_embeddings.extra"]
    summary = trainable_parameter_summary(net)
    assert summary["lora"] == 0 and summary["padconv"] == HEADS * 27 + 1


def test_training_reduces_loss_and_reaches_lora_and_saf():
    net = make_net().train()
    x, images = inputs(batch=4, size=16, seed=2)
    target = torch.sin(torch.linspace(0, 3, HORIZON))[None, :, None].expand(4, HORIZON, N) + 0.5 * x[:, -1:, :]
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = (net(x, images) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.5 * losses[0]
    params = dict(net.named_parameters())
    grads = {n: p.grad for n, p in params.items() if p.requires_grad}
    for name, grad in grads.items():
        assert grad is not None, name
    for key in ("lora_A", "lora_B", "padconv.conv.weight", "padconv.scale", "position_embeddings.extra", "w_af"):
        assert any(key in n and g.abs().sum() > 0 for n, g in grads.items()), key
    frozen = [p for p in net.backbone.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)


def test_state_dict_roundtrip_and_pickle():
    net = make_net().eval()
    x, images = inputs()
    other = make_net(seed=5).eval()
    other.load_state_dict(net.state_dict())
    assert torch.equal(other(x, images), net(x, images))
    clone = pickle.loads(pickle.dumps(net))
    assert torch.equal(clone(x, images), net(x, images))


def test_cpu_autocast_runs():
    net = make_net().eval()
    x, images = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x, images)
    assert y.shape == (BATCH, HORIZON, N) and torch.isfinite(y.float()).all()


def test_input_validation():
    net = make_net().eval()
    x, images = inputs()
    with pytest.raises(ValueError, match="between"):
        net(x, torch.rand(BATCH, 3, IMAGE + 1, IMAGE + 1))
    with pytest.raises(ValueError, match="between"):
        net(x, torch.rand(BATCH, 3, N - 1, N - 1))
    with pytest.raises(ValueError, match="n_nodes"):
        net(torch.randn(BATCH, HISTORY, N + 1), images)
    with pytest.raises(ValueError, match="history"):
        net(torch.randn(BATCH, HISTORY - 1, N), images)
    with pytest.raises(ValueError, match="batch"):
        net(x, images[:1])
    with pytest.raises(ValueError, match="channels"):
        net(x, images[:, :2])
    with pytest.raises(ValueError):
        net(x[0], images)


def test_construction_validation():
    with pytest.raises(ValueError, match="image_size"):
        make_net(n_nodes=IMAGE + 1)
    with pytest.raises(ValueError, match="fusion"):
        make_net(fusion="concat")
    with pytest.raises(ValueError, match="finetune"):
        make_net(finetune="full")
    with pytest.raises(ValueError, match="prompt_ids"):
        STVLMNetwork(tiny_backbone(), torch.tensor([5000]), N, HISTORY, HORIZON)
    net = make_net()
    with pytest.raises(ValueError, match="fresh backbone"):
        make_net(backbone=net.backbone)


# ----------------------------------------------------------------------------- fused kernels
def test_fused_image_path_equals_the_reference_path():
    """W_af and ViLT's normalisation folded into the patch projection and PadConv give
    the tokens and bias maps of mixing the image first (with a non-identity W_af)."""
    net = make_net().eval()
    _, images = inputs(size=20, seed=3)
    with torch.no_grad():
        net.w_af.weight.copy_(torch.tensor([[0.9, 0.3, -0.2], [0.1, 1.2, 0.4], [-0.5, 0.2, 0.8]]))
        mixed = net.mix_image(images)
        torch.testing.assert_close(net._embed_mixed_image(images), net.embed_image(mixed), rtol=1e-5, atol=1e-5)
        fused = net.padconv(images[:, :, :N, :N], mix=net.w_af.weight)
        torch.testing.assert_close(fused, net.padconv(mixed), rtol=1e-4, atol=1e-4)
    # The gradient reaches W_af through both folded paths.
    net.train()
    x, images = inputs(size=20, seed=3)
    net(x, images).sum().backward()
    assert net.w_af.weight.grad is not None and net.w_af.weight.grad.abs().sum() > 0


def test_fused_attention_with_bias_equals_explicit_softmax():
    """The SDPA path with the SAF bias equals the explicit scores + softmax path."""
    model = tiny_backbone()
    saf = install_saf(model).eval()
    h, mask = _hidden_and_mask(length=20)
    bias = torch.randn(3, HEADS, 8, 8)
    with saf.sensor_bias(bias, offset=6):
        fused = saf(h, mask)[0]
        explicit, probs = saf(h, mask, True)  # output_attentions: the explicit path
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-6)
    assert probs.shape == (3, HEADS, 20, 20)
    with saf.sensor_bias(torch.randn(3, HEADS, 8, 8), offset=15), pytest.raises(ValueError, match="does not fit"):
        saf(h, mask)


@pytest.mark.parametrize("bias_batch", [3, 1])
def test_attention_with_a_trained_bias_equals_sdpa_and_its_gradient(bias_batch):
    """With a bias that needs a gradient (one per window, or one for the batch), the
    in-place explicit path gives SDPA's output with the bias spelled out as a full
    additive mask, and the same gradients."""
    import torch.nn.functional as F

    model = tiny_backbone()
    saf = install_saf(model).eval()
    h, mask = _hidden_and_mask(length=20)
    bias = torch.randn(bias_batch, HEADS, 8, 8, requires_grad=True)
    with saf.sensor_bias(bias, offset=6):
        out = saf(h, mask)[0]
    out.square().sum().backward()
    got_bias, got_query = bias.grad.clone(), saf.query.weight.grad.clone()
    saf.zero_grad()

    reference_bias = bias.detach().clone().requires_grad_(True)
    q, k, v = (saf._heads(layer, h) for layer in (saf.query, saf.key, saf.value))
    full = F.pad(reference_bias, (6, 6, 6, 6)) / math.sqrt(saf.attention_head_size)  # 20 = 6 + 8 + 6
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=full + mask)
    ref = ref.permute(0, 2, 1, 3).reshape(3, 20, -1)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_bias, reference_bias.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_query, saf.query.weight.grad, rtol=1e-4, atol=1e-5)
    assert got_bias.abs().sum() > 0


def test_unrolled_decoder_equals_nn_lstm():
    from stvlm.network import LSTMDecoderHead

    torch.manual_seed(0)
    head = LSTMDecoderHead(HIDDEN, horizon=5, decoder_hidden=DEC)
    h = torch.randn(3, 7, HIDDEN)
    seq = h.reshape(21, 1, HIDDEN).expand(-1, 5, -1)
    reference = head.out(head.lstm(seq)[0]).squeeze(-1).view(3, 7, 5).transpose(1, 2)
    torch.testing.assert_close(head(h), reference, rtol=1e-5, atol=1e-6)


def test_unrolled_encoder_equals_nn_lstm_with_gradients():
    from stvlm.network import TemporalEncoder

    torch.manual_seed(0)
    enc = TemporalEncoder(HIDDEN, encoder_hidden=8)
    with torch.no_grad():  # distinct biases, so that a swapped or dropped one shows
        enc.lstm.bias_ih_l0.uniform_(-1, 1)
        enc.lstm.bias_hh_l0.uniform_(-1, 1)
    x = torch.randn(3, 6, 7)  # (B, history, N)
    got = enc(x)
    weights = [enc.lstm.weight_ih_l0, enc.lstm.weight_hh_l0, enc.lstm.bias_ih_l0, enc.lstm.bias_hh_l0]
    got_grads = torch.autograd.grad(got.square().sum(), weights)
    seq = x.permute(0, 2, 1).reshape(21, 6, 1)
    _, (h_n, _) = enc.lstm(seq)  # oneDNN's LSTM: the reference
    reference = enc.proj(h_n[-1]).view(3, 7, -1)
    ref_grads = torch.autograd.grad(reference.square().sum(), weights)
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # each token reads only its own sensor's window
    x2 = x.clone()
    x2[:, :, 4] += 1.0
    changed = (enc(x2) - got).abs().amax(dim=(0, 2))
    assert changed[4] > 0 and torch.count_nonzero(changed) == 1


def test_mlp_head_is_a_residual_mlp_over_each_sensor():
    from stvlm.network import MLPHead

    torch.manual_seed(0)
    head = MLPHead(HIDDEN, horizon=5, width=16, num_layers=2)
    h = torch.randn(3, 7, HIDDEN)
    z = h @ head.inp.weight.T + head.inp.bias
    for block in head.blocks:
        first, second = block[0], block[2]
        z = z + (torch.relu(z @ first.weight.T + first.bias) @ second.weight.T + second.bias)
    reference = (z @ head.out.weight.T + head.out.bias).transpose(1, 2)
    torch.testing.assert_close(head(h), reference, rtol=1e-5, atol=1e-6)
    # each sensor's forecast reads only that sensor's vector
    h2 = h.clone()
    h2[:, 3] += 1.0
    changed = (head(h2) - head(h)).abs().amax(dim=(0, 1))
    assert changed[3] > 0 and torch.count_nonzero(changed) == 1


def test_network_with_mlp_head():
    from stvlm.network import MLPHead

    net = make_net(head="mlp", decoder_hidden=24)
    assert isinstance(net.head, MLPHead) and net.head.out.in_features == 24
    x, images = inputs()
    assert net(x, images).shape == (BATCH, HORIZON, N)
    expected = HIDDEN * 24 + 24 + 2 * 2 * (24 * 24 + 24) + 24 * HORIZON + HORIZON
    assert trainable_parameter_summary(net)["head"] == expected
    with pytest.raises(ValueError, match="head must be one of"):
        make_net(head="gru")
    with pytest.raises(ValueError, match="decoder_hidden"):
        make_net(head="mlp", decoder_hidden=0)


def test_linear_encoder_is_one_linear_map_of_each_sensors_window():
    from stvlm.network import LinearEncoder

    torch.manual_seed(0)
    enc = LinearEncoder(HISTORY, HIDDEN)
    x = torch.randn(3, HISTORY, 7)
    got = enc(x)
    reference = torch.einsum("bhn,dh->bnd", x, enc.proj.weight) + enc.proj.bias
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
    x2 = x.clone()
    x2[:, :, 4] += 1.0
    changed = (enc(x2) - got).abs().amax(dim=(0, 2))
    assert changed[4] > 0 and torch.count_nonzero(changed) == 1


def test_network_with_linear_encoder():
    from stvlm.network import LinearEncoder, TemporalEncoder

    net = make_net(temporal_encoder="linear")
    assert isinstance(net.temporal_encoder, LinearEncoder)
    assert trainable_parameter_summary(net)["temporal_encoder"] == HISTORY * HIDDEN + HIDDEN
    x, images = inputs()
    assert net(x, images).shape == (BATCH, HORIZON, N)
    # the sensor tokens in the text stream are the linear map of the windows
    tokens = net.embed_text(x)[:, net.sensor_offset :]
    torch.testing.assert_close(tokens, net.temporal_encoder.proj(x.transpose(1, 2)))
    assert isinstance(make_net().temporal_encoder, TemporalEncoder)  # the paper's LSTM by default
    with pytest.raises(ValueError, match="temporal_encoder must be one of"):
        make_net(temporal_encoder="gru")


# ----------------------------------------------------------------------------- calendar
@pytest.mark.parametrize("form", ["embedding", "tokens"])
@pytest.mark.parametrize("calendar", ["time-of-day", "time-of-day+day-of-week"])
def test_calendar_reaches_the_forecast(calendar, form):
    net = make_net(calendar=calendar, steps_per_day=48, calendar_form=form).eval()
    fields = 2 if calendar.endswith("week") else 1
    assert net.sensor_offset == net.n_prompt_tokens + (fields if form == "tokens" else 0)
    assert net.n_text_tokens == net.sensor_offset + N
    assert trainable_parameter_summary(net)["calendar"] == (48 + 7 * (fields - 1)) * HIDDEN
    x, images = inputs()
    tod, dow = torch.tensor([3, 30]), torch.tensor([0, 5])
    y = net(x, images, tod, dow)
    assert y.shape == (BATCH, HORIZON, N)
    assert not torch.allclose(y, net(x, images, torch.tensor([4, 31]), dow))  # another time, another forecast
    if fields == 2:
        assert not torch.allclose(y, net(x, images, tod, torch.tensor([1, 6])))
    with pytest.raises(ValueError, match="calendar"):
        net(x, images)


def test_calendar_construction_errors():
    with pytest.raises(ValueError, match="calendar must be one of"):
        make_net(calendar="weekday", steps_per_day=48)
    with pytest.raises(ValueError, match="calendar_form"):
        make_net(calendar="time-of-day", steps_per_day=48, calendar_form="words")
    with pytest.raises(ValueError, match="steps_per_day"):
        make_net(calendar="time-of-day")
