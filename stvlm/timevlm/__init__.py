"""Time-VLM (Zhong et al., ICML 2025): forecasting a multivariate series with a frozen
vision-language model's view of each window and a learned temporal memory.

The estimator is :class:`stvlm.TimeVLMForecaster`; this package holds its parts, one
learner per module: RAL (``_memory.py``), VAL (``_images.py``), TAL (``_prompts.py``),
the frozen VLMs (``_backbones.py``, loaded by ``_vlm_loading.py``) and the network that
fuses them (``_network.py``).
"""

from ._forecaster import TIMEVLM_PRESETS, TimeVLMForecaster

# The torch parts load on first use, so that ``import stvlm`` stays free of torch.
_LAZY = {
    "DEFAULT_VLMS": "_backbones", "VLMEncoder": "_backbones", "load_vlm": "_vlm_loading",
    "tiny_vlm_config": "_vlm_loading", "IMAGE_TRANSFORMS": "_images", "LearnableImage": "_images",
    "minmax_scale": "_images", "series_to_image": "_images", "PatchEmbedding": "_memory",
    "RetrievalAugmentedLearner": "_memory", "n_patches": "_memory", "TimeVLMNetwork": "_network",
    "DEFAULT_DESCRIPTION": "_prompts", "make_prompts": "_prompts",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_DESCRIPTION",
    "DEFAULT_VLMS",
    "IMAGE_TRANSFORMS",
    "LearnableImage",
    "PatchEmbedding",
    "RetrievalAugmentedLearner",
    "TIMEVLM_PRESETS",
    "TimeVLMForecaster",
    "TimeVLMNetwork",
    "VLMEncoder",
    "load_vlm",
    "make_prompts",
    "minmax_scale",
    "n_patches",
    "series_to_image",
    "tiny_vlm_config",
]
