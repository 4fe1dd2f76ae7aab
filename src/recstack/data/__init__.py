"""Datasets, loaders and synthetic data generators."""
