"""
What each MPS AIGC image model accepts, in one table, and the key names of the structured fields.

Sources: the published ``CreateAigcImageTask`` reference (2025-12-31: Hunyuan, GEM 2.5/3.0 with up
to 3 reference images, Jimeng 4.0, Qwen) and the docstrings of the installed
``tencentcloud-sdk-python-mps`` (Hunyuan 3.5-preview up to 5 images and 3.0 up to 3, Qwen 0925,
Vidu q2 up to 7, Kling 2.1 up to 4, O1 and 3.0-Omni up to 10, 3.0, wand-vega-image 1.0-lite /
1.0-flash / 1.0-pro up to 10).  Without a stated limit a model takes one reference image.

The service adds models and versions over time, so this table only ever *tightens* checks for
what it knows: an unknown model or version is sent as is, with a warning.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Reference images a model takes when the documentation states no other limit.
DEFAULT_MAX_REFERENCE_IMAGES = 1

#: ``ExtraParameters.Resolution`` values the documentation lists for most models.
DEFAULT_RESOLUTIONS: tuple[str, ...] = ("720P", "1080P", "2K", "4K")

#: ``ExtraParameters.AspectRatio`` values listed for Kling and Vidu.
KLING_VIDU_ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")

#: ``ExtraParameters.OutputFormat`` values.
OUTPUT_FORMATS: tuple[str, ...] = ("jpeg", "png")

#: ``ExtraParameters.LogoAdd`` values (1 adds the watermark).
LOGO_ADD_VALUES: tuple[int, ...] = (0, 1)

#: Prompt length limit, in characters.
MAX_PROMPT_CHARACTERS = 1000

# Key names of the structured fields, shared by the hook's request builder and validation: each
# table maps the keys callers may use (the API's own name or its snake_case spelling) to the API's
# name, so a request can be written either way and is always sent under the API's names.

#: ``ImageInfos.N`` (``AigcImageInfo``).
IMAGE_INFO_KEYS: Mapping[str, str] = {
    "ImageUrl": "ImageUrl",
    "image_url": "ImageUrl",
    "ReferenceType": "ReferenceType",
    "reference_type": "ReferenceType",
}

#: ``ExtraParameters`` (``AigcImageExtraParam``).
EXTRA_PARAMETER_KEYS: Mapping[str, str] = {
    "AspectRatio": "AspectRatio",
    "aspect_ratio": "AspectRatio",
    "Resolution": "Resolution",
    "resolution": "Resolution",
    "LogoAdd": "LogoAdd",
    "logo_add": "LogoAdd",
    "OutputFormat": "OutputFormat",
    "output_format": "OutputFormat",
}

#: ``StoreCosParam`` (``AigcStoreCosParam``).
STORE_COS_KEYS: Mapping[str, str] = {
    "CosBucketName": "CosBucketName",
    "cos_bucket_name": "CosBucketName",
    "CosBucketRegion": "CosBucketRegion",
    "cos_bucket_region": "CosBucketRegion",
    "CosBucketPath": "CosBucketPath",
    "cos_bucket_path": "CosBucketPath",
}


class ModelCapabilities:
    """
    What one model accepts (read-only; a plain class, as a dataclass costs ~0.7 ms per DAG parse).

    :param name: the ``ModelName`` as the service spells it.
    :param versions: known ``ModelVersion`` values mapped to their reference-image limit.
    :param max_reference_images: limit when no version is given: the largest of the versions'
        limits (the service picks its current stable version, which this table cannot know).
    :param resolutions: allowed ``ExtraParameters.Resolution`` values.
    :param aspect_ratios: allowed ``ExtraParameters.AspectRatio`` values, or ``None`` when the
        documentation lists none (any ``W:H`` ratio is then sent).
    :param scene_types: allowed ``SceneType`` values.
    :param size_rule: ``AdditionalParameters.size`` rule per version: ``(min_side, max_side,
        min_pixels, max_pixels)``, ``None`` meaning no bound.
    """

    __slots__ = (
        "name",
        "versions",
        "max_reference_images",
        "resolutions",
        "aspect_ratios",
        "scene_types",
        "size_rule",
    )

    name: str
    versions: Mapping[str, int]
    max_reference_images: int
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...] | None
    scene_types: tuple[str, ...]
    size_rule: Mapping[str, tuple[int | None, int | None, int | None, int | None]]

    def __init__(
        self,
        *,
        name: str,
        versions: Mapping[str, int],
        max_reference_images: int,
        resolutions: tuple[str, ...] = DEFAULT_RESOLUTIONS,
        aspect_ratios: tuple[str, ...] | None = None,
        scene_types: tuple[str, ...] = (),
        size_rule: Mapping[str, tuple[int | None, int | None, int | None, int | None]] | None = None,
    ) -> None:
        values = {
            "name": name,
            "versions": MappingProxyType(dict(versions)),
            "max_reference_images": max_reference_images,
            "resolutions": tuple(resolutions),
            "aspect_ratios": None if aspect_ratios is None else tuple(aspect_ratios),
            "scene_types": tuple(scene_types),
            "size_rule": MappingProxyType(dict(size_rule or {})),
        }
        for attribute, value in values.items():
            object.__setattr__(self, attribute, value)

    def __setattr__(self, attribute: str, value: object) -> None:
        raise AttributeError(f"ModelCapabilities is read-only: cannot set {attribute!r}.")

    def __delattr__(self, attribute: str) -> None:
        raise AttributeError(f"ModelCapabilities is read-only: cannot delete {attribute!r}.")

    def __repr__(self) -> str:
        fields = ", ".join(f"{attribute}={getattr(self, attribute)!r}" for attribute in self.__slots__)
        return f"ModelCapabilities({fields})"

    def reference_image_limit(self, version: str | None) -> int | None:
        """
        Return how many reference images ``version`` takes, ``None`` when the version is unknown.

        :param version: the ``ModelVersion``, or ``None`` for the service's default version.
        """
        if version is None:
            return self.max_reference_images
        return self.versions.get(version)


def _model(
    name: str,
    versions: dict[str, int],
    *,
    max_reference_images: int | None = None,
    **kwargs: object,
) -> ModelCapabilities:
    limit = max_reference_images if max_reference_images is not None else max(versions.values())
    return ModelCapabilities(
        name=name,
        versions=versions,
        max_reference_images=limit,
        **kwargs,  # type: ignore[arg-type]
    )


_ONE = DEFAULT_MAX_REFERENCE_IMAGES

#: Every model this provider knows, by ``ModelName``.
MODEL_CAPABILITIES: Mapping[str, ModelCapabilities] = MappingProxyType(
    {
        model.name: model
        for model in (
            _model(
                "Hunyuan",
                {"3.5-preview": 5, "3.0": 3},
                scene_types=("3d_panorama",),
                # Hunyuan 3.0: width and height each in [512, 2048], width x height <= 1024 x 1024.
                size_rule={"3.0": (512, 2048, None, 1024 * 1024)},
            ),
            _model("GEM", {"2.5": 3, "3.0": 3}),
            _model("Jimeng", {"4.0": _ONE}),
            _model(
                "Qwen",
                {"0925": _ONE},
                # Qwen 0925: total pixels in [512 x 512, 2048 x 2048].
                size_rule={"0925": (None, None, 512 * 512, 2048 * 2048)},
            ),
            _model("Vidu", {"q2": 7}, aspect_ratios=KLING_VIDU_ASPECT_RATIOS),
            _model(
                "Kling",
                {"2.1": 4, "O1": 10, "3.0": _ONE, "3.0-Omni": 10},
                aspect_ratios=KLING_VIDU_ASPECT_RATIOS,
            ),
            _model(
                "wand-vega-image",
                {"1.0-lite": 10, "1.0-flash": 10, "1.0-pro": 10},
                resolutions=("1K", "2K", "4K"),
            ),
        )
    }
)

#: Known model names, in table order (for UI enums and messages).
KNOWN_MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CAPABILITIES)

#: Every ``Resolution`` any known model accepts (checked when the model is unknown).
ALL_RESOLUTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(res for model in MODEL_CAPABILITIES.values() for res in model.resolutions)
)


def get_model_capabilities(model_name: str | None) -> ModelCapabilities | None:
    """
    Return the capabilities of ``model_name``, or ``None`` when the model is not in the table.

    :param model_name: the ``ModelName`` exactly as sent to the service.
    """
    if model_name is None:
        return None
    return MODEL_CAPABILITIES.get(model_name)
