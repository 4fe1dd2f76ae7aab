"""Implicit-feedback retrieval models with Collie's names and parameters (reached as ``recstack.collie.model``).

They train on `Interactions` through recstack's Trainer; the matrix-factorization scoring they share with
`recstack.models.MatrixFactorizationModel` lives in `recstack.models.retrieval.mf`.
"""
