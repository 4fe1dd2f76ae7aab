"""Evaluation of retrieval models: full-ranking Recall / NDCG / hit rate / precision at K."""

from recstack.evaluation.full_ranking import FullRankingEvaluation, evaluate_full_ranking

__all__ = ["FullRankingEvaluation", "evaluate_full_ranking"]
