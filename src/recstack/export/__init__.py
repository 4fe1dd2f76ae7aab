"""Export: TorchScript towers that run production serving batches, item embeddings in Parquet, the deployable bundle."""

from recstack.export.bundle import Bundle, export_bundle, load_bundle
from recstack.export.embeddings import export_item_embeddings, read_item_embeddings, write_embeddings
from recstack.export.inputs import ServingInputs
from recstack.export.serving import serving_batch
from recstack.export.towers import (
    ExportedTower,
    export_item_tower,
    export_user_tower,
    load_tower,
    read_tower_metadata,
)

__all__ = [
    "Bundle",
    "export_bundle",
    "load_bundle",
    "export_user_tower",
    "export_item_tower",
    "export_item_embeddings",
    "read_item_embeddings",
    "write_embeddings",
    "read_tower_metadata",
    "load_tower",
    "serving_batch",
    "ServingInputs",
    "ExportedTower",
]
