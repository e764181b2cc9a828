"""Synthetic training data: pose, shape, hand and face samplers for the Anny body model."""
