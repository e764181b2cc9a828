"""Neural annotator networks: image backbones."""

from neuralannot.models.backbone import (
    BACKBONES,
    Backbone,
    build_backbone,
    load_efficientnet_lite0_state_dict,
)

__all__ = ["BACKBONES", "Backbone", "build_backbone", "load_efficientnet_lite0_state_dict"]
