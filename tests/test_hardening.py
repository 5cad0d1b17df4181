"""Hardening (issue #16): no code from shared folders, no silent garbage, verified model
files, reproducible fits in threads, clean interrupts. Each test fails on the code
before the fix."""

from __future__ import annotations

import json
import os
import threading
import warnings

import numpy as np
import pytest
import torch

from stvlm import STVLMForecaster, Windows, make_windows
from stvlm.baselines import HistoricalAverageForecaster, LastValueForecaster, LSTMForecaster
from stvlm.metrics import masked_rmse
from stvlm.training import TrainingLoop

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
            image_size=16, patch_size=8, vocab_size=500)


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    t = np.arange(200)[:, None]
    return 100 + 40 * np.sin(2 * np.pi * t / 48 + rng.uniform(0, 6, 4)) + rng.normal(0, 3, (200, 4))


def tiny(**kw):
    params = dict(history=12, horizon=3, backbone=TINY, max_epochs=2, batch_size=16, encoder_hidden=8,
                  decoder_hidden=8, random_state=0, verbose=0)
    params.update(kw)
    return STVLMForecaster(**params)


def lstm(**kw):
    params = dict(history=12, horizon=3, hidden_size=8, max_epochs=2, batch_size=16, random_state=0)
    params.update(kw)
    return LSTMForecaster(**params)


# ---------------------------------------------------------------------- security
@pytest.fixture
def fallback_to_tmp(tmp_path, monkeypatch):
    """No configured cache folder: the kernel folder falls back to the temp directory."""
    import tempfile

    from stvlm.kernels import _unrolled

    for var in ("STVLM_KERNEL_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "home-is-a-file").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path / "home-is-a-file"))  # ~/.cache cannot be made
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _unrolled.kernels.cache_clear()
    _unrolled._fresh_private_dir.cache_clear()
    yield tmp_path / f"stvlm-kernels-{os.getuid()}"
    _unrolled.kernels.cache_clear()
    _unrolled._fresh_private_dir.cache_clear()


def _plant(folder, marker):
    from stvlm.kernels import _unrolled

    folder.mkdir()
    for k in (3, 4):
        (folder / f"stvlm_s2i_k{k}_v{_unrolled._GEN_VERSION}.py").write_text(
            f"open({str(marker)!r}, 'w').write('owned')\n" + _unrolled.source(k)
        )


@pytest.mark.parametrize("how", ["world-writable", "someone-else's"])
def test_a_planted_kernel_folder_is_never_imported_from(fallback_to_tmp, tmp_path, how):
    from stvlm.kernels import _unrolled

    marker = tmp_path / "marker"
    _plant(fallback_to_tmp, marker)
    if how == "world-writable":
        os.chmod(fallback_to_tmp, 0o777)
    else:
        if os.getuid() != 0:
            pytest.skip("chown to another user needs root")  # pragma: no cover
        os.chown(fallback_to_tmp, 12345, 12345)
        os.chmod(fallback_to_tmp, 0o755)
    module = _unrolled.kernels(3)
    used = os.path.dirname(module.__file__)
    assert os.path.realpath(used) != os.path.realpath(fallback_to_tmp)
    assert (os.stat(used).st_mode & 0o077) == 0 and os.stat(used).st_uid == os.getuid()
    assert not marker.exists()


def test_the_private_fallback_is_created_0700_and_used(fallback_to_tmp):
    from stvlm.kernels import _unrolled

    assert _unrolled.kernel_dir() == fallback_to_tmp
    assert (os.stat(fallback_to_tmp).st_mode & 0o777) == 0o700


def test_a_tampered_generated_module_is_rewritten_before_import(fallback_to_tmp, tmp_path):
    from stvlm.kernels import _unrolled

    marker = tmp_path / "marker"
    _plant(fallback_to_tmp, marker)
    os.chmod(fallback_to_tmp, 0o700)  # our own folder, but the file was changed
    module = _unrolled.kernels(4)
    assert not marker.exists()
    assert open(module.__file__).read() == _unrolled.source(4)


# ---------------------------------------------------------------------- silent wrong results
def test_non_finite_losses_stop_training_with_a_clear_error(series):
    with pytest.raises(ValueError, match=r"learning_rate|extreme values"):
        lstm(learning_rate=1e30, max_epochs=3).fit(series * 1e20)


def test_a_scale_beyond_float32_is_refused_up_front(series):
    with pytest.raises(ValueError, match=r"values up to 1e\+39.*float32"):
        lstm().fit(series / series.max() * 1e39)
    X, y = make_windows(series, 12, 3)
    with pytest.raises(ValueError, match=r"y holds values"):
        tiny().fit(X, y * 1e35)


def test_diverging_training_warns(series):
    with pytest.warns(UserWarning, match="training diverged"):
        lstm(learning_rate=50.0, max_epochs=6, patience=10, validation_fraction=0, output="level").fit(series)


def test_random_state_is_checked_as_scikit_learn_does(series):
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32 - 1\]"):
        lstm(random_state=-1).fit(series)
    with pytest.raises(TypeError, match="random_state must be"):
        lstm(random_state="abc").fit(series)
    X = series[None, -12:]
    a = lstm(random_state=np.random.RandomState(0)).fit(series).predict(X)
    b = lstm(random_state=np.random.RandomState(0)).fit(series).predict(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_cuda_device_is_a_clear_error(series, tmp_path):
    with pytest.raises(ValueError, match=r"device='cuda:7', but this machine has 0 CUDA device"):
        lstm(device="cuda:7").fit(series)
    model = tiny(max_epochs=1).fit(series)
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="CUDA device"):
        STVLMForecaster.load(tmp_path / "m", device="cuda:7")


def test_a_4d_input_names_its_shape(series):
    with pytest.raises(ValueError, match=r"3-D windows .* shape \(2, 12, 4, 1\)"):
        tiny().fit(np.zeros((2, 12, 4, 1)))


def test_last_value_fills_a_missing_last_step():
    X = np.arange(12.0).reshape(1, 6, 2)
    X[0, -1, 0] = np.nan
    pred = LastValueForecaster(horizon=2).fit(X).predict(X)
    np.testing.assert_array_equal(pred[0, :, 0], [8.0, 8.0])  # the last finite value


def test_historical_average_refuses_a_sensor_without_data_and_bad_slots():
    s = np.tile(np.arange(4.0), 3)[:, None].repeat(2, axis=1)
    s[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"sensors \[1\] have no finite value"):
        HistoricalAverageForecaster(steps_per_day=4, history=2, horizon=2).fit(s)
    ha = HistoricalAverageForecaster(steps_per_day=4, history=2, horizon=2).fit(s[:, :1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        with pytest.warns(FutureWarning):
            ha.predict(s[None, :2, :1], time_of_day=[-1])
    with pytest.raises(TypeError, match="integers"):
        with pytest.warns(FutureWarning):
            ha.predict(s[None, :2, :1], time_of_day=[1.5])


def test_rmse_does_not_overflow():
    assert masked_rmse(np.array([1e200, 3.0]), np.array([0.0, 3.0])) == pytest.approx(1e200 / np.sqrt(2))


# ---------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def saved(series, tmp_path_factory):
    model = tiny(max_epochs=1).fit(series)
    path = tmp_path_factory.mktemp("saved") / "m"
    model.save(path)
    return model, path


def _copy(path, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(path, out)
    return out


def test_damaged_weights_are_refused(saved, tmp_path):
    d = _copy(saved[1], tmp_path)
    raw = bytearray((d / "model.safetensors").read_bytes())
    raw[-100] ^= 0xFF
    (d / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the sha256"):
        STVLMForecaster.load(d)


def test_nan_weights_are_refused_even_with_a_matching_checksum(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    from stvlm.persistence import _sha256

    d = _copy(saved[1], tmp_path)
    state = load_file(str(d / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][...] = float("nan")
    from safetensors import safe_open

    with safe_open(str(saved[1] / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    save_file(state, str(d / "model.safetensors"), metadata=meta)
    cfg = json.loads((d / "stvlm_config.json").read_text())
    cfg["weights_sha256"] = _sha256(d / "model.safetensors")
    (d / "stvlm_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        STVLMForecaster.load(d)


@pytest.mark.parametrize(
    "section, key, value, match",
    [
        ("params", "horizon", 6, "horizon is 6 in stvlm_config.json, but the weights were trained with horizon=3"),
        ("params", "history", 10, "history is 10"),
        ("fitted", "std_", 0.0, "std_' must be a finite number > 0"),
        ("fitted", "mean_", "abc", "mean_' must be a finite number"),
        ("fitted", "predict", 1, r"unknown fitted fields \['predict'\]"),
    ],
)
def test_an_edited_config_is_refused_naming_the_field(saved, tmp_path, section, key, value, match):
    d = _copy(saved[1], tmp_path)
    cfg = json.loads((d / "stvlm_config.json").read_text())
    cfg[section][key] = value
    (d / "stvlm_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=match):
        STVLMForecaster.load(d)


def test_save_errors_and_no_half_written_folder(saved, tmp_path, monkeypatch):
    model, _ = saved
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        model.save(tmp_path / "a-file")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        tiny().save(tmp_path / "unfitted")

    import stvlm.persistence as persistence

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "_sha256", crash)  # fails after the weights are written
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".new")] == []


def test_saving_over_a_model_keeps_other_files_and_stays_loadable(saved, tmp_path):
    model, path = saved
    d = _copy(path, tmp_path)
    (d / "notes.txt").write_text("mine")
    model.save(d)
    assert (d / "notes.txt").read_text() == "mine"
    X = np.ones((1, 12, 4)) * 100
    np.testing.assert_array_equal(STVLMForecaster.load(d).predict(X), model.predict(X))


# ---------------------------------------------------------------------- concurrency and interrupts
def test_two_fits_in_threads_equal_two_fits_in_a_row(series):
    X = series[None, -12:]
    serial = [tiny(random_state=s).fit(series).predict(X) for s in (1, 2)]
    out = {}

    def run(seed):
        out[seed] = tiny(random_state=seed).fit(series).predict(X)

    threads = [threading.Thread(target=run, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out[1], serial[0])
    np.testing.assert_array_equal(out[2], serial[1])


def test_a_fit_leaves_the_global_generators_alone(series):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lstm(max_epochs=1).fit(series)
    torch.testing.assert_close(torch.rand(3), expected)


def test_ctrl_c_before_the_first_epoch_reraises(series, monkeypatch):
    def interrupt(self, *a):
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainingLoop, "train_epoch", interrupt)
    model = lstm()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyboardInterrupt):
            model.fit(series)
    assert not hasattr(model, "loss_history_")


def test_windows_with_time_are_not_confused_by_the_rule(series):
    # The NaN rule is the front door's: a Windows fills exactly like impute_nonfinite.
    from stvlm._validation import impute_nonfinite

    X, _ = make_windows(series, 12, 3)
    X[3, 2:5, 1] = np.nan
    np.testing.assert_array_equal(Windows(X).filled(), impute_nonfinite(X.copy()))


# ---------------------------------------------------------------------- images and scale
@pytest.mark.parametrize("factor", [1e25, 1e-15, 1e200, 2.0**-60])
def test_images_do_not_depend_on_the_datas_scale(factor):
    from stvlm import SpatialToImageTransformer

    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 50.0, size=(16, 12, 6))
    X[0, :, 3] = 0.0  # a flat sensor stays flat at every scale
    base = SpatialToImageTransformer().fit(X)
    scaled = SpatialToImageTransformer().fit(X * factor)
    assert scaled.dtw_scale_ == pytest.approx(base.dtw_scale_ * factor, rel=1e-12)
    a, b = base.transform(X).channels, scaled.transform(X * factor).channels
    assert np.isfinite(b).all()
    if np.log2(factor).is_integer():
        np.testing.assert_array_equal(a, b)  # a power of two changes no bit
    else:
        np.testing.assert_allclose(a, b, atol=3e-7)  # float32 rounding of the windows
    np.testing.assert_array_equal(b[0, 1:, 3, :], 0.5)


def test_a_near_constant_sensor_is_flat_relative_to_the_data():
    from stvlm.kernels import correlation_channels

    rng = np.random.default_rng(1)
    X = rng.normal(100.0, 20.0, size=(2, 12, 4))
    X[:, :, 2] = 1e-14 * rng.normal(size=(2, 12))  # float noise around 0, next to data of ~100
    C = correlation_channels(X, dtw_scale=50.0)
    np.testing.assert_array_equal(C[:, 1:, 2, :], 0.5)
    # The same data a million times smaller: the same images.
    np.testing.assert_allclose(correlation_channels(X * 1e-6, dtw_scale=50e-6), C, atol=3e-7)


def test_a_learning_rate_that_learns_nothing_warns(series):
    with pytest.warns(UserWarning, match="training failed to learn"):
        tiny(learning_rate=1e4, max_epochs=3, output="level").fit(series)
    # Forecasting the change, training that only hurts keeps the last-value forecast, and says so.
    with pytest.warns(UserWarning, match="no epoch beat the untrained model"):
        model = tiny(learning_rate=1e4, max_epochs=3).fit(series)
    assert model.best_epoch_ == 0
