"""Activations under DeepCTR-Torch's module name (``deepctr_torch.layers.activation``): `Dice` and the factory."""

from recstack.nn.core import Dice, activation_layer

__all__ = ["Dice", "activation_layer"]
