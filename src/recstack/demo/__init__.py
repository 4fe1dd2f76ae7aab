"""The end-to-end demo: a synthetic short-video log to a served recommendation (`run_demo`, ``recstack demo``)."""

from recstack.demo.ranking import RankerResult, RankerStep, train_watch_ranker, train_watch_time_ranker
from recstack.demo.run import DEFAULT_ROWS, run_demo
from recstack.demo.short_video import ShortVideoData, prepare_short_video, ranker_columns, tower_columns, v1_features

__all__ = [
    "DEFAULT_ROWS",
    "RankerResult",
    "RankerStep",
    "ShortVideoData",
    "prepare_short_video",
    "ranker_columns",
    "run_demo",
    "tower_columns",
    "train_watch_ranker",
    "train_watch_time_ranker",
    "v1_features",
]
