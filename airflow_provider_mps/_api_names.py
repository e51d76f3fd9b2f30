"""
Key names of the structured ``CreateAigcImageTask`` fields, shared by the hook and validation.

Each table maps the keys callers may use (the API's own name or its snake_case spelling) to the
API's name, so a request can be written either way and is always sent under the API's names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

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
