"""DeepCTR-Torch 0.2.9's multi-task model tests, run against recstack."""
